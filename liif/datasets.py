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

from liif.images import ImageError
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
