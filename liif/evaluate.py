"""Evaluation on a folder of HR images, as the paper's ``test.py`` does (spec section 4).

LR inputs either come from a folder of pre-made images paired by the EDSR
naming (``name.png`` <-> ``namex{S}.png``), with HR cropped to LR x S, or are
made from HR: crop to a multiple of the scale, then PIL-bicubic down-sampling.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from liif.images import ImageError, list_images, load_image
from liif.metrics import psnr, ssim
from liif.render import render_image
from liif.resize import pil_bicubic


def lr_partner(hr_path: Path, lr_dir: Path, scale: int) -> Path:
    """The EDSR naming: ``0801.png`` at x2 pairs with ``0801x2.png``."""
    for candidate in (lr_dir / f"{hr_path.stem}x{scale}{hr_path.suffix}", lr_dir / f"{hr_path.stem}x{scale}.png"):
        if candidate.is_file():
            return candidate
    raise ImageError(f"{lr_dir}: no LR image {hr_path.stem}x{scale}{hr_path.suffix} for {hr_path.name}")


def downsample_for_test(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop HR to a multiple of the scale and PIL-bicubic down-sample it (the OOD test inputs)."""
    h, w = hr.shape[-2:]
    lr_h, lr_w = math.floor(h / scale), math.floor(w / scale)
    if lr_h < 1 or lr_w < 1:
        raise ValueError(f"image of {h}x{w} is too small for scale {scale}")
    hr = hr[:, : round(lr_h * scale), : round(lr_w * scale)]
    return pil_bicubic(hr, (lr_h, lr_w)), hr


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    grey: bool  # the HR original was greyscale


def evaluate_pairs(
    model: torch.nn.Module,
    hr_paths: list[Path],
    *,
    scale: float,
    protocol: str,
    lr_dir: str | Path | None = None,
    device: str = "auto",
    grey_luma: bool = False,
    progress: bool = True,
    desc: str = "evaluate",
) -> list[ImageScore]:
    """Score ``model`` on each HR image at ``scale``; see the module docstring for the LR inputs."""
    if lr_dir is not None and scale != int(scale):
        raise ValueError(f"paired LR folders need an integer scale, got {scale}")
    scores = []
    for hr_path in tqdm(hr_paths, desc=desc, unit="img", disable=not progress, leave=False):
        hr, notice = load_image(hr_path)
        grey = notice is not None and bool((hr[0] == hr[1]).all() and (hr[1] == hr[2]).all())
        if lr_dir is not None:
            lr, _ = load_image(lr_partner(hr_path, Path(lr_dir), int(scale)))
            hr = hr[:, : lr.shape[1] * int(scale), : lr.shape[2] * int(scale)]
            if hr.shape[1] != lr.shape[1] * int(scale) or hr.shape[2] != lr.shape[2] * int(scale):
                raise ImageError(f"{hr_path}: smaller than its LR image times {scale}")
        else:
            lr, hr = downsample_for_test(hr, scale)
        pred = render_image(model, lr, tuple(hr.shape[-2:]), device=device).permute(2, 0, 1)
        use_grey = grey_luma and grey
        scores.append(
            ImageScore(
                name=hr_path.name,
                psnr=psnr(pred, hr, protocol=protocol, scale=scale, grey=use_grey),
                ssim=ssim(pred, hr, protocol=protocol, scale=scale),
                grey=grey,
            )
        )
    return scores


def evaluate_task(
    model: torch.nn.Module,
    lr_dir: str | Path,
    hr_dir: str | Path,
    *,
    device: str = "auto",
    progress: bool = True,
    desc: str = "evaluate",
) -> list[ImageScore]:
    """Fixed-size tasks (CelebA-HQ L -> H): each LR image rendered at its HR image's size, RGB PSNR, no shave."""
    scores = []
    for hr_path in tqdm(list_images(hr_dir), desc=desc, unit="img", disable=not progress, leave=False):
        lr_path = Path(lr_dir) / hr_path.name
        if not lr_path.is_file():
            raise ImageError(f"{lr_dir}: no LR image {hr_path.name} for {hr_path}")
        hr, _ = load_image(hr_path)
        lr, _ = load_image(lr_path)
        pred = render_image(model, lr, tuple(hr.shape[-2:]), device=device).permute(2, 0, 1)
        scores.append(ImageScore(name=hr_path.name, psnr=psnr(pred, hr), ssim=ssim(pred, hr), grey=False))
    return scores
