"""Stage ``prepare``: decode and check every image once, write the prepared layout (``liif.data.layout``).

Official sets keep their shipped LR images; the sample suite gets MATLAB-bicubic
LR images made the same way; CelebA-HQ faces are resized as the paper does and
split. Each dataset ends with a ``manifest.tsv`` of every file with its md5.
"""

import json
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from liif.data.layout import PreparedData
from liif.files import file_digest
from liif.images import decode_image, list_images, matlab_bicubic, write_png
from liif.sources import SAMPLE_SPLITS, dataset_root, lr_scales, split_file
from liif.sources.catalogue import lookup

CELEBA_SIZES = (256, 128, 64, 32)


def prepare_dataset(name: str, spec: dict, *, raw_root: str | Path, prepared: PreparedData, sample_lr_scales) -> Path:
    """Prepare one dataset of ``data.datasets`` from where ``download`` left it; returns its manifest."""
    root, out = dataset_root(name, spec, raw_root), prepared.dataset(name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if spec.get("catalogue", name) == "celeba-hq":
        src = root / "data1024x1024"
        names = [p.name for p in list_images(src)]
        split = celeba_split(
            names,
            split_json=split_file(name, spec, raw_root),
            val_fraction=spec.get("val_fraction", 0.2),
            seed=spec.get("seed", 0),
        )
        prepare_celeba(src, prepared, name, split=split)
        prepared.split_record(name).write_text(json.dumps(split, indent=2) + "\n")
    elif spec["source"] == "sample":  # photos as HR + LR sets, or (sizes:) as square images like CelebA-HQ's
        for split in [s for s in SAMPLE_SPLITS if spec.get(s)]:
            sources = [root / f"{image}.png" for image in spec[split]]
            if spec.get("sizes"):
                prepare_squares(sources, prepared, name, split, sizes=spec["sizes"], tile=spec.get("tile"))
            else:
                prepare_split(sources, prepared, name, split, lr_scales=sample_lr_scales, crop=spec.get("crop"))
    else:
        entry = lookup(spec.get("catalogue", name))
        prepare_official(root, entry, prepared, name, spec.get("split", "test"), scales=lr_scales(spec, entry))
    return write_manifest(out, prepared.manifest(name))


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


def prepare_official(root: Path, entry, prepared: PreparedData, name: str, split: str, *, scales):
    """Decode and check an official-layout set, write HR and its shipped LR images as RGB PNG."""
    for hr in tqdm(list_images(root / entry.hr_dir), desc=name, unit="img", leave=False):
        write_png(decode_image(hr)[0], prepared.hr(name, split) / f"{hr.stem}.png")
        for s in scales if entry.lr_dir else ():
            lr = root / entry.lr_dir.format(s=s) / f"{hr.stem}x{s}{hr.suffix}"
            write_png(decode_image(lr)[0], prepared.lr(name, split, s) / f"{hr.stem}x{s}.png")


def celeba_split(names: list[str], *, split_json: Path | None, val_fraction: float, seed: int) -> dict:
    """``split.json`` (keys train/val, file names or stems) when given, else a seeded shuffle of sorted names."""
    if split_json is not None and split_json.is_file():
        raw = json.loads(split_json.read_text())
        stems = {Path(n).stem: n for n in names}
        split = {k: [stems[Path(str(x)).stem] for x in raw[k] if Path(str(x)).stem in stems] for k in ("train", "val")}
        return {**split, "source": str(split_json)}
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val]), "source": f"seeded shuffle (seed {seed})"}


def prepare_celeba(src_dir: Path, prepared: PreparedData, name: str, *, split: dict):
    """The paper's resizing: 256 from 1024 with PIL bicubic, then 128, 64 and 32 from the 256 version."""
    for part, names in (("train", split["train"]), ("test", split["val"])):
        prepare_squares([src_dir / n for n in names], prepared, name, part, sizes=CELEBA_SIZES)


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
