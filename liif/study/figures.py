"""The report's figures, drawn with matplotlib: charts of the numbers, and grids of what the trained models render.

Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot), so no backend is chosen and nothing can
open a window. Numbers come from ``liif.study.report``; each chart function saves one PNG and returns its caption.

The qualitative figures render trained checkpoints on test photographs with ``render_image`` (the evaluation's
renderer) and show crops enlarged by pixel repetition, so what is compared is the model's pixels, not a display
filter. Crops are chosen by the data (the most detailed window of a test image), never by hand; which checkpoint is
which method comes from the variants' roles (``liif.config.roles``).
"""

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from liif.config.roles import SIZE_VARIED_METHODS, Roles
from liif.data.layout import PreparedData
from liif.eval.render import render_image
from liif.eval.scores import downsample_for_test
from liif.images import list_images, load_image
from liif.models.checkpoint import load_checkpoint
from liif.study.report import Study, differences


def colours(variants, main: list[str]) -> dict:
    """One colour per variant in every figure: strong colours first, the ``main`` variants first of all."""
    tab20 = matplotlib.colormaps["tab20"].colors
    palette = tab20[0::2] + tab20[1::2]
    first = [v for v in main if v in variants]
    order = first + sorted(v for v in variants if v not in first)
    return {v: palette[i % len(palette)] for i, v in enumerate(order)}


def _save(fig: Figure, path: Path, caption: str, dpi: int = 100) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return caption


def psnr_vs_scale(study: Study, dataset: str, path: Path) -> str:
    """Mean PSNR per variant against scale (log axis), the training range shaded, LIIF's ±2 sd band."""
    table = study.table(dataset)
    variants = [v for v in table.index if not study.is_replicate(v)]
    scales, main, base = study.scales(dataset), study.main(), study.roles.base
    palette = colours(table.index, main)
    fig = Figure(figsize=(8.5, 4.8))
    ax = fig.subplots()
    for variant in variants:
        values = study.base(dataset, variant)
        width = 2.2 if variant == base else 1.2
        ax.plot(
            scales,
            [values[s] for s in scales],
            "-o" if variant in main else "--.",
            label=variant,
            color=palette[variant],
            linewidth=width,
        )
        if variant in study.replicates:
            sd = study.noise(dataset, variant)
            low, high = [values[s] - 2 * sd[s] for s in scales], [values[s] + 2 * sd[s] for s in scales]
            ax.fill_between(scales, low, high, color=palette[variant], alpha=0.2, linewidth=0)
    low, high = study.roles.training_range()
    label = f"training range (x{low:g}-x{high:g})"
    ax.axvspan(min(min(scales) * 0.9, low), high * 1.05, color="0.92", zorder=0, label=label)
    ax.set_xscale("log")
    ax.set_xticks(scales, [f"x{s}" for s in scales])
    ax.minorticks_off()
    ax.set(xlabel="up-sampling scale (log axis)", ylabel="PSNR (dB)", title=f"PSNR against scale, {dataset} test set")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    band = " LIIF's band is its mean ± twice the seed-to-seed standard deviation." if study.replicates else ""
    caption = f"Mean PSNR on the {dataset} test images per scale (log axis); grey: the {label}.{band}"
    return _save(fig, path, caption, dpi=110)


def training_curves(history: pd.DataFrame, path: Path, *, validation: str, main: list[str]) -> str:
    fig = Figure(figsize=(12, 4.3))
    loss_ax, val_ax = fig.subplots(1, 2)
    palette = colours(list(dict.fromkeys(history["variant"])), main)
    for variant, rows in history.groupby("variant", sort=False):
        loss_ax.plot(rows["epoch"], rows["loss"], label=variant, color=palette[variant], linewidth=1)
        val_ax.plot(rows["epoch"], rows["val_psnr"], label=variant, color=palette[variant], linewidth=1)
    loss_ax.set(xlabel="epoch", ylabel="L1 loss (normalised RGB)", title="training loss", yscale="log")
    val_title = "validation PSNR (each variant at its own training scales)"
    val_ax.set(xlabel="epoch", ylabel="PSNR (dB)", title=val_title)
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
    val_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    caption = f"Training loss and validation PSNR per epoch; validation patches come from {validation}."
    return _save(fig, path, caption, dpi=110)


def size_varied_curves_figure(frame: pd.DataFrame, path: Path, *, source: str) -> str:
    """LIIF (native GTs) and the up-sampler (GTs resized) against training epochs, one panel per task and recipe
    of a learning-curve study (``liif.study.report.size_varied_curves``)."""
    panels = list(frame.groupby(["dataset", "task L-H", "recipe"], sort=False))
    fig = Figure(figsize=(5.5 * len(panels), 4))
    for ax, ((dataset, task, recipe), rows) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        rows = rows.sort_values("epoch")
        for column, colour in (("LIIF (native GTs)", "tab:blue"), ("up-sampling (GTs resized)", "tab:orange")):
            ax.plot(rows["epoch"], rows[column], marker="o", markersize=3, label=column, color=colour)
        ax.set(xlabel="epoch", ylabel="validation PSNR at H x H (dB)", title=f"{dataset} {task}, recipe {recipe}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    caption = (
        f"Size-varied LIIF against the up-sampler on the validation split as training lengthens ({source}); "
        "each recipe stretches the whole schedule, its learning-rate steps included."
    )
    return _save(fig, path, caption, dpi=100)


def heatmap(table: pd.DataFrame, path: Path, *, title: str, noise: str | None = None) -> str:
    """A variants x scales table of dB differences as a diverging heat map, each cell labelled."""
    values = table.to_numpy(dtype=float)
    limit = max(np.nanmax(np.abs(values)), 0.05)
    fig = Figure(figsize=(1.3 * values.shape[1] + 2.5, 0.6 * values.shape[0] + 1.6))
    ax = fig.subplots()
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:+.2f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel("scale")
    fig.colorbar(image, ax=ax, label="PSNR difference (dB)")
    ax.set_title(title, fontsize=10)
    note = "" if noise is None else f" Twice the seed-to-seed standard deviation is {noise}."
    return _save(fig, path, f"Each ablation minus LIIF (red: the ablation is worse).{note}")


def image_grid(
    rows: list[list[tuple[str, np.ndarray]]], path: Path, *, panel: tuple[float, float], caption: str
) -> str:
    """Rows of (title, H x W x 3 image) panels, each shown by pixel repetition: the model's own pixels,
    not a display filter. Rows may be shorter than the longest; their missing panels stay empty."""
    columns = max(len(row) for row in rows)
    fig = Figure(figsize=(panel[0] * columns, panel[1] * len(rows)))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                title, image = row[c]
                ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
                ax.set_title(title, fontsize=9)
            else:
                ax.set_axis_off()
    return _save(fig, path, caption)


def report_charts(study: Study, history: pd.DataFrame, out: Path, *, validation: str) -> dict[str, str]:
    """The charts of numbers (no checkpoint needed) in a folder cleared of old PNGs: {file name: caption}."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    captions = {}
    for dataset in study.datasets():
        name = f"psnr_vs_scale_{dataset}.png"
        captions[name] = psnr_vs_scale(study, dataset, out / name)
        diffs = differences(study, dataset, list(study.roles.ablations()))
        if not diffs.empty:
            noise = study.noise(dataset)
            spread = ", ".join(f"x{s} {2 * noise[s]:.2f} dB" for s in noise.index if not np.isnan(noise[s]))
            name = f"rq4_ablations_{dataset}.png"
            title = f"ablation minus LIIF, {dataset} test set (dB)"
            captions[name] = heatmap(diffs, out / name, title=title, noise=spread or None)
    if not history.empty:
        captions["training.png"] = training_curves(
            history, out / "training.png", validation=validation, main=study.main()
        )
    return captions


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
        for method in SIZE_VARIED_METHODS:
            model = load_model(models, methods.get(method), checkpoint)
            if model is not None:
                outputs[methods[method]] = render_image(model, lr, (hr_size, hr_size)).permute(2, 0, 1)
        outputs["ground truth"] = load_image(hr_path)[0]
        pairs.append((f"{lr_size}->{hr_size}", lr, outputs))
    return pairs
