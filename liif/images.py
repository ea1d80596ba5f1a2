"""Reading and writing images as (3, H, W) float tensors in [0, 1]."""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError


class ImageError(Exception):
    """An image that cannot be read or written; the message names the file."""


def load_image(path: str | Path) -> tuple[torch.Tensor, str | None]:
    """Decode any image Pillow reads into RGB; returns the tensor and a notice when it was converted.

    Greyscale, palette and alpha images become RGB (alpha is dropped); 16-bit
    images are scaled to 8 bits, as every image of the paper's data is 8-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.float64)
                array = np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8)  # 65535 -> 255
                img = Image.fromarray(array, mode="L")
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None
    notice = None if mode == "RGB" else f"{path}: converted {mode} image to 8-bit RGB"
    array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255, notice


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 array, rounding to nearest."""
    return torch.round(image.clamp(0, 1) * 255).to(torch.uint8).numpy()


SUFFIXES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


def check_output_path(path: str | Path) -> Path:
    """Fail before any work when the output suffix or folder is unusable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".npy" and suffix not in SUFFIXES:
        raise ImageError(f"{path}: unknown output format {suffix!r}; use .png, .jpg or .npy")
    if not path.parent.exists():
        raise ImageError(f"{path}: folder {path.parent} does not exist")
    return path


def save_image(image: torch.Tensor, path: str | Path):
    """Save (H, W, 3) float in [0, 1]: 8-bit by suffix, or ``.npy`` float32 for exact comparisons.

    Written to a temporary file and renamed, so a failure leaves no partial output.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if suffix == ".npy":
                np.save(f, image.float().numpy().astype(np.float32))
            else:
                kwargs = {"quality": 95} if SUFFIXES[suffix] == "JPEG" else {}
                Image.fromarray(to_uint8(image)).save(f, format=SUFFIXES[suffix], **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    """The images of a folder, sorted by name; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"{folder}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files
