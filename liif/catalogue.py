"""The paper's datasets: official archives, the folder layout inside them, and how to get each.

Sizes and checksums are given where they are published; where they are not,
``liif.sources`` records the SHA-256 of the first verified download in
``data/raw/<dataset>/checksums.json`` and checks every later copy against it.
"""

from dataclasses import dataclass, field

DIV2K_URL = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
EDSR_BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"


@dataclass(frozen=True)
class Archive:
    name: str  # file name, also the name looked up in a mirror
    url: str | None  # None: no working public link
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    archives: tuple[Archive, ...]
    hr_dir: str  # HR images, relative to the extracted root
    lr_dir: str | None = None  # LR_bicubic/X{s} folders ("{s}" is replaced), relative to the root
    lr_scales: tuple[int, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)


def _div2k(split: str) -> Dataset:
    archives = [Archive(f"DIV2K_{split}_HR.zip", DIV2K_URL + f"DIV2K_{split}_HR.zip")]
    archives += [
        Archive(f"DIV2K_{split}_LR_bicubic_X{s}.zip", DIV2K_URL + f"DIV2K_{split}_LR_bicubic_X{s}.zip")
        for s in (2, 3, 4)
    ]
    return Dataset(
        name=f"div2k-{split}",
        archives=tuple(archives),
        hr_dir=f"DIV2K_{split}_HR",
        lr_dir=f"DIV2K_{split}_LR_bicubic/X{{s}}",
        lr_scales=(2, 3, 4),
    )


def _benchmark(name: str) -> Dataset:
    return Dataset(
        name=name.lower(),
        archives=(Archive("benchmark.tar", EDSR_BENCHMARK_URL),),
        hr_dir=f"benchmark/{name}/HR",
        lr_dir=f"benchmark/{name}/LR_bicubic/X{{s}}",
        lr_scales=(2, 3, 4),
    )


CATALOGUE = {
    "div2k-train": _div2k("train"),
    "div2k-valid": _div2k("valid"),
    **{b.lower(): _benchmark(b) for b in ("Set5", "Set14", "B100", "Urban100")},
    "celeba-hq": Dataset(
        name="celeba-hq",
        archives=(Archive("data1024x1024.zip", None), Archive("split.json", None)),
        hr_dir="data1024x1024",
        notes=(
            "CelebA-HQ has no working public download (the authors' Google-Drive link is dead). Put "
            "data1024x1024.zip (the 30,000 faces at 1024x1024) and optionally split.json (keys train/val) "
            "into {raw}, or set source: local with path: pointing at a folder holding data1024x1024/."
        ),
    ),
}


def lookup(name: str) -> Dataset:
    if name not in CATALOGUE:
        raise KeyError(f"unknown dataset {name!r}; the catalogue has {', '.join(CATALOGUE)}")
    return CATALOGUE[name]
