"""Reading and writing images. One decoder serves every reader (prepare, training, evaluation, CLI),
so the same file always gives the same pixels."""

import contextlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from liif.files import atomic_write

EXIF_ORIENTATION = 0x0112
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


class ImageError(Exception):
    """An image that cannot be read or written; the message names the file."""


@contextlib.contextmanager
def _opened(path: str | Path):
    """``Image.open`` with every way a file can fail turned into an ImageError that names it."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            yield img
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image, unreadable or truncated ({e}); replace it") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) from the file's header, without decoding the pixels (a small file can hold a huge image)."""
    with _opened(path) as img:
        width, height = img.size
        orientation = _orientation(img)
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1: as stored; 5-8: turned by 90 degrees), 1 when absent or unreadable."""
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF: take the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1  # outside the 8 defined values: as stored, as viewers do


def decode_image(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Decode a whole file (a truncated one fails here, by name) into 8-bit RGB (H, W, 3).

    Greyscale, palette and alpha images become RGB (alpha is dropped); 16-bit
    images are scaled to 8 bits (65535 -> 255), as every image of the paper's
    data is 8-bit; an EXIF orientation is applied, as image viewers do. The
    notice says what was converted, None for plain RGB as stored.
    """
    with _opened(path) as img:
        img.load()
        mode, orientation = img.mode, _orientation(img)
        if orientation != 1:
            img = ImageOps.exif_transpose(img)
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(img, dtype=np.float64)
            img = Image.fromarray(np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8), mode="L")
        rgb = np.array(img.convert("RGB"), dtype=np.uint8)  # writable, owns its memory
    notes = [] if mode == "RGB" else [f"converted {mode} image to 8-bit RGB"]
    if orientation != 1:
        notes.append(f"applied its EXIF orientation {orientation}")
    return rgb, f"{path}: {'; '.join(notes)}" if notes else None


def load_image(path: str | Path) -> tuple[torch.Tensor, str | None]:
    """``decode_image`` as a (3, H, W) float tensor in [0, 1]."""
    array, notice = decode_image(path)
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255, notice


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 array, rounding to nearest."""
    return torch.round(image.clamp(0, 1) * 255).to(torch.uint8).numpy()


def check_output_path(path: str | Path) -> Path:
    """Fail before any work when the output suffix or folder is unusable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".npy" and suffix not in OUTPUT_FORMATS:
        raise ImageError(f"{path}: unknown output format {suffix!r}; use .png, .jpg or .npy")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: folder {path.parent} does not exist")
    try:  # a real write, not os.access: it also knows read-only mounts, ACLs and root
        with atomic_write(path.parent / f".{path.name}.probe") as f:
            f.write(b"")
        (path.parent / f".{path.name}.probe").unlink()
    except OSError as e:
        raise ImageError(
            f"{path}: cannot write into {path.parent} ({e.strerror}); choose another output folder"
        ) from None
    return path


def write_png(array: np.ndarray, path: str | Path):
    """A uint8 (H, W[, 3]) array as PNG, atomically (prepared data: no fsync, ``dvc repro`` remakes it)."""
    with atomic_write(path, durable=False) as f:
        Image.fromarray(np.ascontiguousarray(array)).save(f, format="PNG")


def save_image(image: torch.Tensor, path: str | Path):
    """Save (H, W, 3) float in [0, 1]: 8-bit by suffix, or ``.npy`` float32 for exact comparisons."""
    path = check_output_path(path)
    suffix = path.suffix.lower()
    try:
        with atomic_write(path) as f:
            if suffix == ".npy":
                np.save(f, image.float().numpy().astype(np.float32))
            else:
                kwargs = {"quality": 95} if OUTPUT_FORMATS[suffix] == "JPEG" else {}
                Image.fromarray(to_uint8(image)).save(f, format=OUTPUT_FORMATS[suffix], **kwargs)
    except OSError as e:
        raise ImageError(f"{path}: could not be written ({e}); nothing was left behind") from None


def list_images(folder: str | Path) -> list[Path]:
    """The images of a folder, sorted by name; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"{folder}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files
