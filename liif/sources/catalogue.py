"""The paper's datasets: official archives, the folder layout inside them, and how to get each.

Sizes and SHA-256 are pinned where a public record exists: the DIV2K archives as recorded by
TensorFlow Datasets (``tensorflow_datasets/datasets/div2k/checksums.tsv``), the EDSR
``benchmark.tar`` as recorded by a public SISR project that checks its copy against it. Where no
record exists (CelebA-HQ), ``liif.sources`` records the SHA-256 of the first copy that was fully
checked and extracted in ``dataset-checksums.json`` (tracked in git, beside ``params.yaml``) and
checks every later copy against it.

Every archive here holds images only: ``IMAGE_ARCHIVE`` states what one member may declare (the
largest DIV2K PNG is about 8 MB; PNG and JPEG barely compress in a zip), and anything beyond is
refused before extraction.
"""

from dataclasses import dataclass

from liif.protocol import SHIPPED_LR_SCALES
from liif.sources.archives import ArchiveLimits
from liif.sources.base import SourceError

DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
EDSR_BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"

CELEBA_SIZES = (256, 128, 64, 32)  # the paper's CelebA-HQ squares: 256 from 1024, the others from 256


@dataclass(frozen=True)
class Archive:
    name: str  # file name, also the name looked up in a mirror
    url: str | None  # None: no working public link
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogueEntry:
    """One dataset of the paper: its archives and where the HR and LR images sit once extracted."""

    name: str
    archives: tuple[Archive, ...]
    hr_dir: str  # HR images, relative to the extracted root
    lr_dir: str | None = None  # LR_bicubic/X{s} folders ("{s}" is replaced), relative to the root
    lr_scales: tuple[int, ...] = ()
    squares: tuple[int, ...] = ()  # prepared as squares of these sizes, split into train and test (no LR sets)
    notes: str = ""
    limits: ArchiveLimits = ArchiveLimits()  # what one member of its archives may declare


IMAGE_ARCHIVE = ArchiveLimits(max_member_bytes=32 << 20, max_ratio=20.0, max_members=100_000)


# name: (bytes, SHA-256)
PUBLISHED = {
    "DIV2K_train_HR.zip": (3530603713, "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"),
    "DIV2K_train_LR_bicubic_X2.zip": (925390592, "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850"),
    "DIV2K_train_LR_bicubic_X3.zip": (427847282, "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a"),
    "DIV2K_train_LR_bicubic_X4.zip": (246914039, "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a"),
    "DIV2K_valid_HR.zip": (448993893, "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"),
    "DIV2K_valid_LR_bicubic_X2.zip": (117763600, "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57"),
    "DIV2K_valid_LR_bicubic_X3.zip": (54513392, "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3"),
    "DIV2K_valid_LR_bicubic_X4.zip": (31505881, "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553"),
    "benchmark.tar": (250112000, "80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8"),
}


def _published(name: str, url: str) -> Archive:
    size, sha256 = PUBLISHED[name]
    return Archive(name, url, size=size, sha256=sha256)


def _div2k(split: str) -> CatalogueEntry:
    names = [f"DIV2K_{split}_HR.zip"] + [f"DIV2K_{split}_LR_bicubic_X{s}.zip" for s in SHIPPED_LR_SCALES]
    archives = [_published(n, DIV2K_URL + n) for n in names]
    return CatalogueEntry(
        name=f"div2k-{split}",
        archives=tuple(archives),
        hr_dir=f"DIV2K_{split}_HR",
        lr_dir=f"DIV2K_{split}_LR_bicubic/X{{s}}",
        lr_scales=SHIPPED_LR_SCALES,
        limits=IMAGE_ARCHIVE,
    )


def _benchmark(name: str) -> CatalogueEntry:
    return CatalogueEntry(
        name=name.lower(),
        archives=(_published("benchmark.tar", EDSR_BENCHMARK_URL),),
        hr_dir=f"benchmark/{name}/HR",
        lr_dir=f"benchmark/{name}/LR_bicubic/X{{s}}",
        lr_scales=SHIPPED_LR_SCALES,
        limits=IMAGE_ARCHIVE,
    )


CATALOGUE = {
    "div2k-train": _div2k("train"),
    "div2k-valid": _div2k("valid"),
    **{b.lower(): _benchmark(b) for b in ("Set5", "Set14", "B100", "Urban100")},
    "celeba-hq": CatalogueEntry(
        name="celeba-hq",
        archives=(Archive("data1024x1024.zip", None), Archive("split.json", None)),
        hr_dir="data1024x1024",
        squares=CELEBA_SIZES,
        limits=IMAGE_ARCHIVE,
        notes=(
            "CelebA-HQ has no working public download (the authors' Google-Drive link is dead). Put "
            "data1024x1024.zip (the 30,000 faces at 1024x1024) and optionally split.json (keys train/val) "
            "into {raw}, or set source: local with path: pointing at a folder holding data1024x1024/."
        ),
    ),
}


def lookup(name: str) -> CatalogueEntry:
    if name not in CATALOGUE:
        raise SourceError(f"unknown dataset {name!r}; the catalogue has {', '.join(CATALOGUE)}")
    return CATALOGUE[name]
