"""The two bicubic resizers the paper's numbers depend on (spec 3.3, ecosystem notes).

* ``pil_bicubic`` makes training inputs and out-of-distribution test inputs,
  exactly as the reference's ``resize_fn``: float -> uint8 by multiply and
  truncate, PIL bicubic (antialiased when shrinking), back to float.
* ``matlab_bicubic`` reproduces MATLAB ``imresize(..., 'bicubic')`` on uint8
  images: Keys cubic (a = -0.5), kernel widened by 1/scale when shrinking,
  symmetric border, the axis with the smaller scale resized first, and
  rounding to uint8 after each pass. The x2/x3/x4 LR images that ship with
  DIV2K and the benchmarks were made this way, and so is the Bicubic baseline.
"""

import math

import numpy as np
import torch
from PIL import Image


def pil_bicubic(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (3, H, W) float image in [0, 1] to ``size`` = (h, w) with PIL bicubic."""
    array = (image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    resized = Image.fromarray(array).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 255


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
    """``matlab_bicubic`` for a (3, H, W) float image in [0, 1] holding 8-bit values."""
    array = torch.round(image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    out = matlab_bicubic(array, size=size)
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255
