"""Qualitative figures of the report: what the trained models' outputs look like, next to the ground truth.

Every figure renders trained checkpoints on test photographs with ``render_image``
(the evaluation's renderer) and shows crops enlarged by pixel repetition, so
what is compared is the model's pixels, not a display filter. Crops are chosen
by the data (the most detailed window of a test image), never by hand. Which
checkpoint is which method comes from the variants' roles (``liif.roles``); the
panels are drawn by ``liif.charts.image_grid``.
"""

from pathlib import Path

import numpy as np
import torch

from liif.charts import image_grid
from liif.checkpoint import load_checkpoint
from liif.evaluate import downsample_for_test
from liif.images import list_images, load_image
from liif.layout import PreparedData
from liif.render import render_image
from liif.roles import Roles

ZOOM_SCALES = (1.5, 2.0, 3.0, 4.5, 6.0, 9.0, 13.5, 20.0, 30.0)


def detailed_window(hr: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most gradient energy (textures, edges)."""
    size = min(size, *hr.shape[-2:]) - 1
    grey = hr.mean(0)
    energy = (grey[1:, :-1] - grey[:-1, :-1]).abs() + (grey[:-1, 1:] - grey[:-1, :-1]).abs()
    pooled = torch.nn.functional.avg_pool2d(energy[None, None], size, stride=max(size // 4, 1))[0, 0]
    y, x = divmod(int(pooled.argmax()), pooled.shape[1])
    step = max(size // 4, 1)
    return y * step, x * step


def detail_score(image: torch.Tensor) -> float:
    """Mean absolute difference between vertically adjacent pixels: which test photograph has the most to show."""
    return float((image[:, 1:] - image[:, :-1]).abs().mean())


def upscale_at(model, hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(model output, cropped HR) for the HR image down-sampled by ``scale`` (PIL bicubic, as the OOD tests)."""
    lr, hr = downsample_for_test(hr, scale)
    return render_image(model, lr, tuple(hr.shape[-2:])).permute(2, 0, 1), hr


def _pixels(image: torch.Tensor) -> np.ndarray:
    """C x H x W tensor -> H x W x C array in [0, 1]."""
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def _crop(image: torch.Tensor, corner: tuple[int, int], size: int) -> np.ndarray:
    y, x = corner
    return _pixels(image[:, y : y + size, x : x + size])


def figure_method_grid(
    models: dict, images: dict[str, torch.Tensor], *, scales: list[float], crop: int, path: Path
) -> str:
    """Rows: each image at each scale; columns: each model's output and the ground truth, on the image's
    most detailed crop."""
    rows = []
    for image_name, hr in images.items():
        side = min(crop, *hr.shape[-2:])
        corner = detailed_window(hr, side)
        for s in scales:
            row = [
                (f"{name} x{s:g}", _crop(upscale_at(model, hr, s)[0], corner, side)) for name, model in models.items()
            ]
            row.append((f"ground truth ({side} px)", _crop(hr, corner, side)))
            rows.append([(f"{image_name}: {row[0][0]}", row[0][1]), *row[1:]])
    caption = (
        f"{', '.join(images)}: the {crop}x{crop} window with the most detail, enlarged by pixel "
        "repetition; inputs are the photograph down-sampled by each scale (PIL bicubic). Look at edges and "
        "fine texture against the ground truth; beyond x4, at how each method fills the space between "
        "input pixels (paper Fig. 5: MetaSR turns blocky, LIIF stays continuous)."
    )
    return image_grid(rows, path, panel=(2.6, 2.8), caption=caption)


def _lr_patch(hr: torch.Tensor, scale: float, lr_crop: int) -> torch.Tensor:
    """The most detailed ``lr_crop`` square of the photograph down-sampled by ``scale``."""
    lr, _ = downsample_for_test(hr, scale)
    lr_crop = min(lr_crop, *lr.shape[-2:])
    y, x = detailed_window(lr, lr_crop)
    return lr[:, y : y + lr_crop, x : x + lr_crop]


def figure_zoom_strip(model, hr: torch.Tensor, *, lr_crop: int, path: Path, image_name: str, scales=ZOOM_SCALES) -> str:
    """One LR crop rendered at many (non-integer) scales by one model: the continuous representation."""
    patch = _lr_patch(hr, 4, lr_crop)
    side = patch.shape[-1]
    panels = [(f"input {side} px", _pixels(patch))]
    for s in scales:
        out = round(side * s)
        panels.append((f"x{s:g} ({out} px)", render_image(model, patch, (out, out)).numpy()))
    caption = (
        f"One {side}x{side} crop of {image_name} (down-sampled x4) rendered by the "
        "same LIIF at scales from x1.5 to x30, each panel drawn at the same display size: detail "
        "stays continuous between and beyond the x1-x4 training scales."
    )
    return image_grid([panels], path, panel=(2.2, 2.6), caption=caption)


def figure_cell_sizes(
    model, no_cell_model, hr: torch.Tensor, *, scale: float, lr_crop: int, path: Path, image_name: str
) -> str:
    """Paper Fig. 6: one x``scale`` output decoded with the cells of 1/1, 1/2, 1/scale input pixels, and
    the model trained without cell decoding."""
    patch = _lr_patch(hr, scale, lr_crop)
    lr_side = patch.shape[-1]
    side = round(lr_side * scale)
    panels = [(f"input {lr_side} px", _pixels(patch))]
    for k in (1, 2, scale):
        cell = (2 / lr_side / k,) * 2
        panels.append((f"cell 1/{k:g} pixel", render_image(model, patch, (side, side), cell=cell).numpy()))
    if no_cell_model is not None:
        panels.append(("no cell decoding (-c)", render_image(no_cell_model, patch, (side, side)).numpy()))
    caption = (
        f"A {lr_side}x{lr_side} crop of {image_name} (down-sampled x{scale:g}) rendered at "
        f"x{scale:g} by LIIF decoding each query with the cell of a whole, half and 1/{scale:g} input pixel "
        "(the last is what an x30 query asks for), and by the model trained without cell decoding. Look at "
        "sharpness: in the paper (Fig. 6) the cell of 1/30 pixel gives the sharpest output, a whole-pixel "
        "cell a blurred one, and the model without cell decoding artefacts."
    )
    return image_grid([panels], path, panel=(2.8, 3), caption=caption)


def figure_size_varied(pairs: list[tuple[str, torch.Tensor, dict]], path: Path) -> str:
    """RQ3: per task, the L x L input, each model's H x H output and the ground truth."""
    rows = [
        [
            (f"{task}: input {lr.shape[-1]} px", _pixels(lr)),
            *((name, _pixels(image)) for name, image in outputs.items()),
        ]
        for task, lr, outputs in pairs
    ]
    caption = (
        "Size-varied study: the most detailed test input of each task, each model's output at the target size "
        "and the ground truth, enlarged by pixel repetition."
    )
    return image_grid(rows, path, panel=(2.8, 3), caption=caption)


def load_model(models: Path, variant: str | None, checkpoint: str):
    """A variant's trained model in eval mode, None when the variant or its checkpoint does not exist."""
    path = models / variant / checkpoint if variant else None
    return load_checkpoint(path)[0].eval() if path is not None and path.is_file() else None


def render_figures(
    roles: Roles, datasets: list[str], *, models: Path, prepared: PreparedData, out: Path, evaluation: dict
) -> dict[str, str]:
    """Every qualitative figure whose models exist in this profile; returns {file name: caption}."""
    captions, checkpoint = {}, evaluation["checkpoint"]
    liif = load_model(models, roles.base, checkpoint)
    if liif is not None and datasets:
        bicubic, metasr = load_model(models, roles.bicubic, checkpoint), load_model(models, roles.metasr, checkpoint)
        images = {p.stem: load_image(p)[0] for p in list_images(prepared.hr(datasets[0], "test"))}
        detail = sorted(images, key=lambda n: -detail_score(images[n]))
        top = images[detail[0]]
        methods = {k: m for k, m in (("Bicubic", bicubic), ("LIIF", liif)) if m is not None}
        captions["rq1_textures_x4.png"] = figure_method_grid(
            methods, {n: images[n] for n in detail[:3]}, scales=[4], crop=96, path=out / "rq1_textures_x4.png"
        )
        methods = {k: m for k, m in (("Bicubic", bicubic), ("MetaSR", metasr), ("LIIF", liif)) if m is not None}
        captions["rq2_scales.png"] = figure_method_grid(
            methods, {detail[0]: top}, scales=[4, 12, 30], crop=120, path=out / "rq2_scales.png"
        )
        captions["rq2_zoom.png"] = figure_zoom_strip(
            liif, top, lr_crop=24, path=out / "rq2_zoom.png", image_name=detail[0]
        )
        no_cell = next((v for v, r in roles.of.items() if r.kind == "ablation" and r.component == "cell_decode"), None)
        captions["rq4_cell.png"] = figure_cell_sizes(
            liif,
            load_model(models, no_cell, checkpoint),
            top,
            scale=30,
            lr_crop=12,
            path=out / "rq4_cell.png",
            image_name=detail[0],
        )
    pairs = size_varied_samples(roles, models=models, prepared=prepared, checkpoint=evaluation["task_checkpoint"])
    if pairs:
        captions["rq3_samples.png"] = figure_size_varied(pairs, out / "rq3_samples.png")
    return captions


def size_varied_samples(roles: Roles, *, models: Path, prepared: PreparedData, checkpoint: str) -> list:
    """(task, input, {variant: output, ground truth}) for the most detailed test square of each size-varied task."""
    pairs = []
    for (dataset, (lr_size, hr_size)), methods in roles.size_varied().items():
        hr_paths = list_images(prepared.sized(dataset, "test", hr_size))
        hr_path = max(hr_paths, key=lambda p: detail_score(load_image(p)[0]))  # not a flat patch of sky
        lr = load_image(prepared.sized(dataset, "test", lr_size) / hr_path.name)[0]
        outputs = {}
        for method in ("liif", "up-sampling"):
            model = load_model(models, methods.get(method), checkpoint)
            if model is not None:
                outputs[methods[method]] = render_image(model, lr, (hr_size, hr_size)).permute(2, 0, 1)
        outputs["ground truth"] = load_image(hr_path)[0]
        pairs.append((f"{lr_size}->{hr_size}", lr, outputs))
    return pairs
