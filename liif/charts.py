"""Every chart of the report: line plots, heat maps and grids of rendered images, drawn with matplotlib.

Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot), so no
backend is chosen and nothing can open a window. Numbers come from
``liif.report``, pixels from ``liif.renders``; this module only draws them.
Each function saves one PNG and returns its caption.
"""

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from liif.report import Study, differences


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
