"""Data sources and the canonical prepared layout the later stages read.

Prepared layout (one folder per dataset)::

    data/prepared/<dataset>/<split>/HR/<name>.png
    data/prepared/<dataset>/<split>/LR_bicubic/X<s>/<name>x<s>.png   # MATLAB bicubic, as the official sets
    data/prepared/<dataset>/manifest.tsv                              # path, size, md5 of every file

The ``sample`` source needs no network: real photographs that ship inside the
scikit-image wheel.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from liif.images import ImageError, list_images
from liif.resize import matlab_bicubic

SAMPLE_LOADERS = {  # skimage.data function names; stereo_motorcycle returns (left, right, disparity)
    "astronaut": "astronaut",
    "brick": "brick",
    "camera": "camera",
    "chelsea": "chelsea",
    "coffee": "coffee",
    "coins": "coins",
    "grass": "grass",
    "gravel": "gravel",
    "hubble_deep_field": "hubble_deep_field",
    "immunohistochemistry": "immunohistochemistry",
    "moon": "moon",
    "retina": "retina",
    "rocket": "rocket",
    "stereo_motorcycle": "stereo_motorcycle",
}


def write_png_atomic(array: np.ndarray, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(array).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_sample_suite(names: list[str], out_dir: str | Path) -> list[Path]:
    """Write the named scikit-image photographs as PNG files (greyscale ones stay greyscale)."""
    try:
        import skimage.data
    except ImportError:
        raise ImportError("the sample suite needs scikit-image: pip install scikit-image") from None
    out_dir = Path(out_dir)
    unknown = [n for n in names if n not in SAMPLE_LOADERS]
    if unknown:
        raise ValueError(f"unknown sample images {unknown}; available: {', '.join(SAMPLE_LOADERS)}")
    paths = []
    for name in tqdm(names, desc="sample suite", unit="img", leave=False):
        image = getattr(skimage.data, SAMPLE_LOADERS[name])()
        if isinstance(image, tuple):
            image = image[0]
        path = out_dir / f"{name}.png"
        write_png_atomic(np.ascontiguousarray(image), path)
        paths.append(path)
    return paths


def decode_rgb(path: Path) -> np.ndarray:
    """Decode fully (a truncated file fails here, by name) and convert to 8-bit RGB."""
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e}); re-download or remove it") from None


def prepare_split(sources: list[Path], out_dir: str | Path, *, lr_scales: list[int], desc: str = "prepare"):
    """HR as RGB PNG plus MATLAB-bicubic LR at each scale (HR cropped to a multiple of it first)."""
    out_dir = Path(out_dir)
    for src in tqdm(sources, desc=desc, unit="img", leave=False):
        rgb = decode_rgb(src)
        write_png_atomic(rgb, out_dir / "HR" / f"{src.stem}.png")
        for s in lr_scales:
            h, w = rgb.shape[0] // s * s, rgb.shape[1] // s * s
            lr = matlab_bicubic(np.ascontiguousarray(rgb[:h, :w]), scale=1 / s)
            write_png_atomic(lr, out_dir / "LR_bicubic" / f"X{s}" / f"{src.stem}x{s}.png")


def md5sum(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(root: str | Path) -> Path:
    """``manifest.tsv``: every file under ``root`` with its size and md5, sorted by path."""
    root = Path(root)
    rows = ["path\tbytes\tmd5"]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.tsv"):
        rows.append(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\t{md5sum(path)}")
    manifest = root / "manifest.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def reset_dir(path: str | Path) -> Path:
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def prepare_official(root: Path, *, hr_dir: str, lr_dir: str | None, scales, out_dir: str | Path, desc: str):
    """Decode and check an official-layout set, write HR and its shipped LR images as RGB PNG."""
    out_dir = Path(out_dir)
    hr_paths = list_images(root / hr_dir)
    for hr in tqdm(hr_paths, desc=desc, unit="img", leave=False):
        write_png_atomic(decode_rgb(hr), out_dir / "HR" / f"{hr.stem}.png")
        for s in scales if lr_dir else ():
            lr = root / lr_dir.format(s=s) / f"{hr.stem}x{s}{hr.suffix}"
            write_png_atomic(decode_rgb(lr), out_dir / "LR_bicubic" / f"X{s}" / f"{hr.stem}x{s}.png")


CELEBA_SIZES = (256, 128, 64, 32)


def celeba_split(names: list[str], *, split_json: Path | None, val_fraction: float, seed: int) -> dict:
    """``split.json`` (keys train/val, file names or stems) when given, else a seeded shuffle of sorted names."""
    import json
    import random

    if split_json is not None and split_json.is_file():
        raw = json.loads(split_json.read_text())
        stems = {Path(n).stem: n for n in names}
        split = {k: [stems[Path(str(x)).stem] for x in raw[k] if Path(str(x)).stem in stems] for k in ("train", "val")}
        return {**split, "source": str(split_json)}
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val]), "source": f"seeded shuffle (seed {seed})"}


def prepare_celeba(src_dir: Path, out_dir: str | Path, *, split: dict, desc: str = "celeba"):
    """The paper's resizing: 256 from 1024 with PIL bicubic, then 128, 64 and 32 from the 256 version."""
    out_dir = Path(out_dir)
    for part, names in (("train", split["train"]), ("test", split["val"])):
        for name in tqdm(names, desc=f"{desc}/{part}", unit="img", leave=False):
            face = Image.fromarray(decode_rgb(src_dir / name))
            base = face.resize((256, 256), Image.Resampling.BICUBIC)
            stem = Path(name).stem
            for size in CELEBA_SIZES:
                img = base if size == 256 else base.resize((size, size), Image.Resampling.BICUBIC)
                write_png_atomic(np.asarray(img), out_dir / part / str(size) / f"{stem}.png")
