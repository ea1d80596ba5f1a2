"""Stage ``prepare``: decode and check every image once, write the prepared layout (``liif.data.layout``).

What to write comes from the dataset's source (``liif.sources``, its ``plan``): HR images with LR sets made by
MATLAB bicubic (the sample suite), HR images with the LR images a dataset ships (DIV2K, the benchmarks), or squares
of every size (CelebA-HQ, split as its source says). Each dataset ends with a ``manifest.tsv`` of every file with
its md5.
"""

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from liif.config.params import ParamsError
from liif.config.schema import datasets_of
from liif.data.layout import PreparedData
from liif.files import file_digest
from liif.images import decode_image, matlab_bicubic, write_png
from liif.sources import dataset_plan
from liif.sources.base import Part, Photographs, ShippedPairs, Squares


def prepare_datasets(data: dict, *, raw_root: str | Path, prepared: PreparedData, names=None):
    """The datasets of the ``data`` section (validated: ``liif.config.schema.check_sections``) named in ``names``
    (default: all of ``data.datasets`` and ``data.folders``); yields each one's name and manifest as it is
    written. ``data.lr_scales`` are the LR sets made by bicubic."""
    datasets = datasets_of(data)
    for name in datasets if names is None else names:
        if name not in datasets:
            raise ParamsError(f"params.yaml data: no dataset {name!r} in data.datasets or data.folders")
        yield (
            name,
            prepare_dataset(name, datasets[name], raw_root=raw_root, prepared=prepared, lr_scales=data["lr_scales"]),
        )


def prepare_dataset(name: str, spec: dict, *, raw_root: str | Path, prepared: PreparedData, lr_scales) -> Path:
    """Prepare one dataset (of ``data.datasets`` or ``data.folders``) from where ``download`` left it, or from its
    own folder; returns its manifest. ``lr_scales``: the LR sets made by bicubic where the source ships none
    (``data.lr_scales``)."""
    out = prepared.dataset(name)
    plan = dataset_plan(name, spec, raw_root)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for part in plan.parts:
        prepare_part(part, prepared, name, lr_scales=lr_scales)
    if plan.split_record is not None:
        prepared.split_record(name).write_text(json.dumps(plan.split_record, indent=2) + "\n")
    return write_manifest(out, prepared.manifest(name))


def prepare_part(part: Part, prepared: PreparedData, name: str, *, lr_scales):
    """One split of a dataset as its source describes it."""
    if isinstance(part, Photographs):
        scales = lr_scales if part.lr_scales is None else part.lr_scales
        prepare_split(list(part.images), prepared, name, part.split, lr_scales=scales, crop=part.crop)
    elif isinstance(part, ShippedPairs):
        prepare_shipped(part, prepared, name)
    elif isinstance(part, Squares):
        prepare_squares(list(part.images), prepared, name, part.split, sizes=part.sizes, tile=part.tile)
    else:
        raise TypeError(f"{type(part).__name__}: not a part of liif.sources.base")


def prepare_split(
    sources: list[Path], prepared: PreparedData, name: str, split: str, *, lr_scales, crop: int | None = None
):
    """HR as RGB PNG plus MATLAB-bicubic LR at each scale (HR cropped to a multiple of it first).

    ``crop``: keep only the central crop x crop pixels of each image (small smoke-test sets).
    """
    for src in tqdm(sources, desc=f"{name}/{split}", unit="img", leave=False):
        rgb, _ = decode_image(src)
        if crop:
            top, left = max(0, (rgb.shape[0] - crop) // 2), max(0, (rgb.shape[1] - crop) // 2)
            rgb = np.ascontiguousarray(rgb[top : top + crop, left : left + crop])
        write_png(rgb, prepared.hr(name, split) / f"{src.stem}.png")
        for s in lr_scales:
            h, w = rgb.shape[0] // s * s, rgb.shape[1] // s * s
            lr = matlab_bicubic(np.ascontiguousarray(rgb[:h, :w]), scale=1 / s)
            write_png(lr, prepared.lr(name, split, s) / f"{src.stem}x{s}.png")


def prepare_shipped(part: ShippedPairs, prepared: PreparedData, name: str):
    """Decode and check HR images and their shipped LR images, write them as RGB PNG."""
    for hr in tqdm(part.images, desc=name, unit="img", leave=False):
        write_png(decode_image(hr)[0], prepared.hr(name, part.split) / f"{hr.stem}.png")
        for s, folder in part.lr.items():
            lr = folder / f"{hr.stem}x{s}{hr.suffix}"
            write_png(decode_image(lr)[0], prepared.lr(name, part.split, s) / f"{hr.stem}x{s}.png")


def _squares(rgb: np.ndarray, stem: str, tile: int | None) -> list[tuple[str, np.ndarray]]:
    """The central square of an image, or (``tile``) every whole tile x tile square of it, row by row."""
    if tile is None:
        side = min(rgb.shape[:2])
        top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
        return [(stem, rgb[top : top + side, left : left + side])]
    return [
        (f"{stem}-{r:02d}-{c:02d}", rgb[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile])
        for r in range(rgb.shape[0] // tile)
        for c in range(rgb.shape[1] // tile)
    ]


def prepare_squares(
    sources: list[Path], prepared: PreparedData, name: str, split: str, *, sizes, tile: int | None = None
):
    """Each image as squares of every size: the largest from the central square with PIL bicubic (the
    whole image for CelebA-HQ's square faces), the smaller ones from the largest, as the paper does.
    ``tile``: cut each photograph into tile x tile squares instead (the size-varied study on the sample
    suite, which has a few photographs where CelebA-HQ has thousands of faces)."""
    largest, *smaller = sorted(sizes, reverse=True)
    for src in tqdm(sources, desc=f"{name}/{split}", unit="img", leave=False):
        rgb, _ = decode_image(src)
        for stem, square in _squares(rgb, src.stem, tile):
            base = Image.fromarray(np.ascontiguousarray(square))
            if base.size != (largest, largest):
                base = base.resize((largest, largest), Image.Resampling.BICUBIC)
            write_png(np.asarray(base), prepared.sized(name, split, largest) / f"{stem}.png")
            for size in smaller:
                small = base.resize((size, size), Image.Resampling.BICUBIC)
                write_png(np.asarray(small), prepared.sized(name, split, size) / f"{stem}.png")


def write_manifest(root: Path, manifest: Path) -> Path:
    """Every file under ``root`` with its size and md5, sorted by path."""
    rows = ["path\tbytes\tmd5"]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p != manifest):
        rows.append(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\t{file_digest(path, 'md5')}")
    manifest.write_text("\n".join(rows) + "\n")
    return manifest
