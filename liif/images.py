"""Reading and writing images. One decoder serves every reader (prepare, training, evaluation, CLI),
so the same file always gives the same pixels.

The two bicubic resizers the paper's numbers depend on (spec 3.3 and 4; the details of each are below).

* ``pil_bicubic`` makes training inputs and out-of-distribution test inputs,
  exactly as the reference's ``resize_fn``: float -> uint8 by multiply and
  truncate, PIL bicubic (antialiased when shrinking), back to float.
* ``matlab_bicubic`` reproduces MATLAB's bicubic ``imresize`` on uint8
  images: Keys cubic (a = -0.5), kernel widened by 1/scale when shrinking,
  symmetric border, the axis with the smaller scale resized first, and
  rounding to uint8 after each pass. The x2/x3/x4 LR images that ship with
  DIV2K and the benchmarks were made this way, and so is the Bicubic baseline.

Both resize any number of channels, each on its own. A model of one channel (``model.channels: 1``) reads every
image through ``to_grey``, the one rule that reduces RGB to grey (``GREY_RULE``).
"""

import contextlib
import math
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from liif.errors import UserError
from liif.files import atomic_write

EXIF_ORIENTATION = 0x0112
# Every file suffix Pillow opens as a picture, except its stubs that need another program or plugin (scientific
# data, PostScript, Windows metafiles, video): a folder of images is read under one rule, whatever made it.
NOT_PICTURES = {".bufr", ".grib", ".h5", ".hdf", ".fit", ".fits", ".eps", ".ps", ".emf", ".wmf", ".mpeg", ".mpg"}
IMAGE_SUFFIXES = {
    suffix for suffix, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and suffix not in NOT_PICTURES
}
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


class ImageError(UserError):
    """An image that cannot be read or written; the message names the file."""


@contextlib.contextmanager
def _opened(path: str | Path):
    """``Image.open`` with every way a file can fail turned into an ImageError that names it.

    A file of several frames (animated GIF, PNG or WebP, multi-page TIFF) is refused: which frame is
    meant is unknown, and taking the first one silently scores or renders another image than the user
    sees. A JPEG that carries extra pictures (MPO, as phones and cameras write) is not refused: its
    primary picture is the photograph every viewer shows.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format != "MPO":
                raise ImageError(
                    f"{path}: a {img.format} file of {frames} frames (an animation or several pages); refused, as "
                    "which frame is meant is unknown: save the one you want as an image of its own"
                )
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


_SIXTEEN_BIT = re.compile(r"(RGB|RGBA|RGBX|CMYK|LA);16([BLN])")  # Pillow's layouts it reduces to 8 bits by v >> 8
_SIXTEEN_BIT_CODECS = {"zip", "raw", "libtiff"}  # PNG and TIFF: decoders whose rawmode only picks bytes


def _rawmode(tile) -> str:
    """How a decoder tile lays out the file's samples ("RGB;16B"); "" when the plugin does not say."""
    args = tile[3]
    if isinstance(args, str):
        return args
    return args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else ""


def _with_rawmode(tile, rawmode: str):
    args = rawmode if isinstance(tile[3], str) else (rawmode, *tile[3][1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


SIXTEEN_BIT_RULE = "round(v / 257) of each 16-bit sample v"
GREY_RULE = (
    "an image whose three channels are equal gives that channel; any other is reduced to ITU-R BT.601 luma "
    'L = 0.299 R + 0.587 G + 0.114 B, rounded, as Pillow\'s convert("L") computes it'
)
RGB_TARGET, GREY_TARGET = "8-bit RGB", "8-bit grey"  # what a read converts to (``decode_image``'s channels)
COLOUR_REDUCED = f"reduced its colour to one grey channel for a 1-channel model ({GREY_RULE})"
FLOAT_RULE = "round(v * 255) of each sample v, read as an intensity in [0, 1]"


def _from_16_bit(values: np.ndarray) -> np.ndarray:
    """The one 16-bit rule: round(v / 257), so 65535 -> 255 and 257 k -> k (no ties: 257 is odd)."""
    return ((values.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def _deep_colour(path: Path, img: Image.Image, tiles: list, bits: int) -> tuple[Image.Image, str] | None:
    """An 8-bit image of the samples of a 16-bit colour or grey+alpha file, by ``_from_16_bit``, and its layout.

    Pillow decodes such files to 8 bits by keeping each sample's high byte (v >> 8); the low bytes are
    decoded again from the file with the opposite byte order, which picks the other byte of each sample.
    None when the file does not hold more than 8 bits per colour sample.
    """
    rawmodes = {_rawmode(t) for t in tiles}
    match = _SIXTEEN_BIT.fullmatch(rawmodes.pop()) if len(rawmodes) == 1 else None
    if match is None and bits <= 8:
        return None
    if match is None or not {t[0] for t in tiles} <= _SIXTEEN_BIT_CODECS:
        raise ImageError(
            f"{path}: {bits}-bit {img.mode} samples in a layout ({', '.join(sorted(rawmodes)) or '?'}) that cannot "
            "be read exactly; save it as 8-bit, or as a 16-bit PNG or interleaved TIFF"
        )
    layout, order = match.groups()
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    # grey+alpha has no little-endian layout; read as 8-bit RGBA it gives (L high, L low, A high, A low)
    low = "RGBA" if layout == "LA" else f"{layout};16{'B' if order == 'L' else 'L'}"
    try:
        with Image.open(path) as again:
            again.tile = [_with_rawmode(t, low) for t in again.tile]
            again.load()
            low_bytes = np.asarray(again)
    except (ValueError, OSError) as e:
        raise ImageError(
            f"{path}: 16-bit {layout} samples that cannot be read exactly ({e}); save it as 8-bit or as a 16-bit PNG"
        ) from None
    if layout == "LA":
        grey = low_bytes[..., 0].astype(np.uint16) * 256 + low_bytes[..., 1]
        return Image.fromarray(_from_16_bit(grey), mode="L"), "16-bit LA"
    values = np.asarray(img).astype(np.uint16) * 256 + low_bytes
    return Image.fromarray(_from_16_bit(values), mode=img.mode), f"16-bit {layout}"


def _to_8_bit(path: Path, img: Image.Image, tiles: list, target: str) -> tuple[Image.Image, str | None]:
    """``img`` with 8-bit samples, and a note of what was converted to ``target`` (None for 8-bit RGB, or grey
    read as grey); see ``decode_image``."""
    mode = img.mode
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError(f"{path}: a floating-point image holding NaN or infinite values; replace it")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            raise ImageError(
                f"{path}: a floating-point image with values from {low:g} to {high:g}; float images are read as "
                "intensities in [0, 1] only: rescale it to [0, 1], or save it as an 8- or 16-bit image"
            )
        eight = Image.fromarray(np.round(values * 255).astype(np.uint8), mode="L")
        return eight, f"converted F (floating-point) image to {target}: {FLOAT_RULE}"
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(img).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError(
                f"{path}: an integer image (mode {mode}) with values from {values.min()} to {values.max()}; integer images "
                "wider than 8 bits are read as 16-bit (0 to 65535) only; save it as an 8- or 16-bit image"
            )
        eight = Image.fromarray(_from_16_bit(values), mode="L")
        return eight, f"converted {mode} image to {target}: {SIXTEEN_BIT_RULE}"
    bits = (getattr(img, "tag_v2", None) or {}).get(258, 8)  # TIFF BitsPerSample: one value or one per channel
    deep = _deep_colour(path, img, tiles, max(bits) if isinstance(bits, tuple) and bits else int(bits))
    if deep is not None:
        return deep[0], f"converted {deep[1]} image to {target}: {SIXTEEN_BIT_RULE}"
    as_is = ("RGB",) if target == RGB_TARGET else ("RGB", "L")  # RGB is reduced to grey by GREY_RULE, noted there
    return img, None if img.mode in as_is else f"converted {img.mode} image to {target}"


_TRANSPOSE = {  # EXIF orientation -> the transpose that shows the image upright, as ImageOps.exif_transpose
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def decode_image(path: str | Path, *, channels: int = 3) -> tuple[np.ndarray, str | None]:
    """Decode a whole file (a truncated one fails here, by name) into 8-bit RGB (H, W, 3), or with ``channels``
    1 into 8-bit grey (H, W, 1): the RGB image reduced by ``to_grey``, the notice saying so where it held colour.

    Every image of the paper's data is 8-bit RGB; everything else is converted by one rule, and the
    notice names it (None for plain 8-bit RGB as stored):

    - greyscale, palette, CMYK and alpha images become RGB (alpha is dropped);
    - 16-bit samples, whatever the channel count (grey, grey+alpha, RGB, RGBA, CMYK; PNG or TIFF):
      ``round(v / 257)``, so 65535 -> 255 and 257 k -> k exactly (not Pillow's ``v >> 8`` for colour);
      integer images of another width (Pillow mode ``I``) are read as 16-bit, and refused when they
      hold values outside 0..65535;
    - floating-point images (Pillow mode ``F``, e.g. a 32-bit float TIFF) hold intensities in [0, 1]:
      ``round(v * 255)``; values outside [0, 1], NaN or infinity are refused, never guessed at;
    - several frames (animated GIF/PNG/WebP, multi-page TIFF) are refused (see ``_opened``); of a JPEG
      with extra pictures (MPO) the primary picture is used, with a notice;
    - an EXIF orientation is applied, as image viewers do;
    - read for a 1-channel model (``channels`` 1), the RGB image is reduced to grey by ``to_grey``
      (``GREY_RULE``), and the notice says so where it held colour.
    """
    if channels not in (1, 3):
        raise ValueError(f"images are read as RGB (3 channels) or grey (1), not {channels} channels")
    path = Path(path)
    with _opened(path) as img:
        tiles = list(img.tile)  # how Pillow will decode it: load() forgets
        img.load()
        orientation, frames = _orientation(img), getattr(img, "n_frames", 1)
        img, conversion = _to_8_bit(path, img, tiles, RGB_TARGET if channels == 3 else GREY_TARGET)
        if orientation != 1:
            img = img.transpose(_TRANSPOSE[orientation])
        rgb = np.array(img.convert("RGB"), dtype=np.uint8)  # writable, owns its memory
    notes = [] if conversion is None else [conversion]
    if channels == 1:
        grey, reduced = to_grey(rgb)
        rgb = grey[..., None]  # (H, W, 1)
        if reduced:
            notes.append(COLOUR_REDUCED)
    if frames > 1:
        notes.append(f"used the primary picture of its {frames} pictures (MPO)")
    if orientation != 1:
        notes.append(f"applied its EXIF orientation {orientation}")
    return rgb, f"{path}: {'; '.join(notes)}" if notes else None


def load_image(path: str | Path, *, channels: int = 3) -> tuple[torch.Tensor, str | None]:
    """``decode_image`` as a (channels, H, W) float tensor in [0, 1]."""
    array, notice = decode_image(path, channels=channels)
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255, notice


def to_grey(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The one rule by which a 1-channel model reads an RGB image (``GREY_RULE``): uint8 (H, W, 3) -> (H, W)
    and whether colour was reduced. A greyscale photograph, stored as RGB by prepare, gives its grey exactly."""
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].copy(), False
    return np.array(Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").convert("L")), True


def grey_image(image: torch.Tensor) -> torch.Tensor:
    """``to_grey`` of a (3, H, W) float image in [0, 1] holding 8-bit values (as read, or PIL-resized) ->
    (1, H, W)."""
    array = torch.round(image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return torch.from_numpy(to_grey(array)[0]).unsqueeze(0).float() / 255


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> uint8 array, rounding to nearest."""
    return torch.round(image.clamp(0, 1) * 255).to(torch.uint8).numpy()


def check_output_path(path: str | Path) -> Path:
    """Fail before any work when the output cannot be written: a folder or another non-file at the path,
    an unknown suffix, a missing or unwritable folder. (Whether an existing file may be replaced is the
    caller's decision.)"""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder; name the output file, e.g. {path / 'out.png'}")
    if path.exists() and not path.is_file():
        raise ImageError(f"{path}: exists and is not a regular file; choose another output")
    suffix = path.suffix.lower()
    if suffix != ".npy" and suffix not in OUTPUT_FORMATS:
        raise ImageError(f"{path}: unknown output format {suffix!r}; use .png, .jpg or .npy")
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise ImageError(f"{path}: folder {path.parent} {what}")
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
    """Save (H, W, 3) float in [0, 1]: 8-bit by suffix, or ``.npy`` float32 for exact comparisons; a grey
    (H, W, 1) image as a greyscale (mode L) file, or an (H, W) ``.npy``."""
    path = check_output_path(path)
    suffix = path.suffix.lower()
    if image.shape[-1] == 1:
        image = image[..., 0]
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
        raise ImageError(f"{folder}: holds no images (any file Pillow reads: .png, .jpg, .tif, .webp, ...)")
    return files


def pil_bicubic(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (3, H, W) or grey (1, H, W) float image in [0, 1] to ``size`` = (h, w) with PIL bicubic."""
    array = (image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[-1] == 1:  # Pillow's grey mode L: the same filter on the one channel
        array = array[..., 0]
    resized = Image.fromarray(array).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    out = np.asarray(resized).copy().reshape(size[0], size[1], -1)
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len, taps) and source indices (out_len, taps) for one axis."""
    kernel_width = 4.0
    if scale < 1:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if scale < 1 else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(array: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, indices = _contributions(array.shape[axis], out_len, scale)
    moved = np.moveaxis(array.astype(np.float64), axis, 0)  # (in_len, ...)
    gathered = moved[indices]  # (out_len, taps, ...)
    w = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    result = (gathered * w).sum(axis=1)
    result = np.clip(np.floor(result + 0.5), 0, 255).astype(np.uint8)  # MATLAB rounds half away from 0
    return np.moveaxis(result, 0, axis)


def matlab_bicubic(image: np.ndarray, *, scale: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB ``imresize`` bicubic of a uint8 (H, W[, C]) array, by ``scale`` or to ``size`` = (h, w)."""
    if image.dtype != np.uint8:
        raise TypeError(f"matlab_bicubic works on uint8 images, got {image.dtype}")
    in_h, in_w = image.shape[:2]
    if size is None:
        if scale is None or scale <= 0:
            raise ValueError("give a positive scale or an output size")
        scales = (float(scale), float(scale))
        size = (int(math.ceil(in_h * scale)), int(math.ceil(in_w * scale)))
    else:
        scales = (size[0] / in_h, size[1] / in_w)
    out = image
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # stable: rows first on ties, as MATLAB
        out = _resize_axis(out, axis, size[axis], scales[axis])
    return out


def matlab_bicubic_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``matlab_bicubic`` for a (C, H, W) float image in [0, 1] holding 8-bit values (RGB or grey)."""
    array = torch.round(image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    out = matlab_bicubic(array, size=size)
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255
