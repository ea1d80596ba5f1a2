"""Qualitative figures of the report: what the models' outputs look like, next to the ground truth.

Every figure renders trained checkpoints on test photographs with ``render_image``
(the evaluation's renderer) and shows crops enlarged by pixel repetition, so
what is compared is the model's pixels, not a display filter. Crops are chosen
by the data (the most detailed window of a test image), never by hand.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from liif.checkpoint import load_checkpoint  # noqa: E402
from liif.evaluate import downsample_for_test  # noqa: E402
from liif.images import list_images, load_image  # noqa: E402
from liif.layout import PreparedData  # noqa: E402
from liif.render import render_image  # noqa: E402
from liif.report import ABLATIONS, Study, differences, plot_psnr_vs_scale  # noqa: E402
from liif.variants import resolve_variant  # noqa: E402

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


def upscale_at(model, hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(model output, cropped HR) for the HR image down-sampled by ``scale`` (PIL bicubic, as the OOD tests)."""
    lr, hr = downsample_for_test(hr, scale)
    return render_image(model, lr, tuple(hr.shape[-2:])).permute(2, 0, 1), hr


def _crop(image: torch.Tensor, corner: tuple[int, int], size: int) -> np.ndarray:
    y, x = corner
    return image[:, y : y + size, x : x + size].permute(1, 2, 0).clamp(0, 1).numpy()


def _show(ax, image: np.ndarray, title: str):
    ax.imshow(image, interpolation="nearest")  # pixel repetition: the model's own pixels
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path, caption: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return caption


def figure_method_grid(
    models: dict, images: dict[str, torch.Tensor], *, scales: list[float], crop: int, path: Path
) -> str:
    """Rows: each image at each scale; columns: each model's output and the ground truth, on the image's
    most detailed crop."""
    rows = [(name, hr, s) for name, hr in images.items() for s in scales]
    columns = [*models, "ground truth"]
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(2.6 * len(columns), 2.8 * len(rows)), squeeze=False)
    for row, (image_name, hr, s) in enumerate(rows):
        side = min(crop, *hr.shape[-2:])
        corner = detailed_window(hr, side)
        for col, name in enumerate(columns):
            out = hr if name == "ground truth" else upscale_at(models[name], hr, s)[0]
            title = f"{name} x{s:g}" if name != "ground truth" else f"ground truth ({side} px)"
            _show(axes[row][col], _crop(out, corner, side), f"{image_name}: {title}" if col == 0 else title)
    return _save(
        fig,
        path,
        f"{', '.join(images)}: the {crop}x{crop} window with the most detail, enlarged by pixel "
        f"repetition; inputs are the photograph down-sampled by each scale (PIL bicubic). Look at edges and "
        f"fine texture against the ground truth; beyond x4, at how each method fills the space between "
        f"input pixels (paper Fig. 5: MetaSR turns blocky, LIIF stays continuous).",
    )


def figure_zoom_strip(model, hr: torch.Tensor, *, lr_crop: int, path: Path, image_name: str, scales=ZOOM_SCALES) -> str:
    """One LR crop rendered at many (non-integer) scales by one model: the continuous representation."""
    lr, _ = downsample_for_test(hr, 4)
    lr_crop = min(lr_crop, *lr.shape[-2:])
    y, x = detailed_window(lr, lr_crop)
    patch = lr[:, y : y + lr_crop, x : x + lr_crop]
    fig, axes = plt.subplots(1, len(scales) + 1, figsize=(2.2 * (len(scales) + 1), 2.6))
    _show(axes[0], patch.permute(1, 2, 0).numpy(), f"input {lr_crop} px")
    for ax, s in zip(axes[1:], scales):
        side = round(lr_crop * s)
        out = render_image(model, patch, (side, side))
        _show(ax, out.numpy(), f"x{s:g} ({side} px)")
    return _save(
        fig,
        path,
        f"One {lr_crop}x{lr_crop} crop of {image_name} (down-sampled x4) rendered by the "
        "same LIIF at scales from x1.5 to x30, each panel drawn at the same display size: detail "
        "stays continuous between and beyond the x1-x4 training scales.",
    )


def figure_cell_sizes(
    model, no_cell_model, hr: torch.Tensor, *, scale: float, lr_crop: int, path: Path, image_name: str
) -> str:
    """Paper Fig. 6: one x``scale`` output decoded with the cells of 1/1, 1/2, 1/scale input pixels, and
    the model trained without cell decoding."""
    lr, _ = downsample_for_test(hr, scale)
    lr_crop = min(lr_crop, *lr.shape[-2:])
    y, x = detailed_window(lr, lr_crop)
    patch = lr[:, y : y + lr_crop, x : x + lr_crop]
    side = round(lr_crop * scale)
    panels = [
        (f"cell 1/{k:g} pixel", render_image(model, patch, (side, side), cell=(2 / lr_crop / k,) * 2))
        for k in (1, 2, scale)
    ]
    if no_cell_model is not None:
        panels.append(("no cell decoding (-c)", render_image(no_cell_model, patch, (side, side))))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(2.8 * (len(panels) + 1), 3))
    _show(axes[0], patch.permute(1, 2, 0).numpy(), f"input {lr_crop} px")
    for ax, (title, out) in zip(axes[1:], panels):
        _show(ax, out.numpy(), title)
    return _save(
        fig,
        path,
        f"A {lr_crop}x{lr_crop} crop of {image_name} (down-sampled x{scale:g}) rendered at "
        f"x{scale:g} by LIIF decoding each query with the cell of a whole, half and 1/{scale:g} input pixel "
        "(the last is what an x30 query asks for), and by the model trained without cell decoding. Look at "
        "sharpness: in the paper (Fig. 6) the cell of 1/30 pixel gives the sharpest output, a whole-pixel "
        "cell a blurred one, and the model without cell decoding artefacts.",
    )


def figure_size_varied(pairs: list[tuple[str, torch.Tensor, dict]], path: Path) -> str:
    """RQ3: per task, the L x L input, each model's H x H output and the ground truth."""
    columns = max(len(outputs) for _, _, outputs in pairs) + 1
    fig, axes = plt.subplots(len(pairs), columns, figsize=(2.8 * columns, 3 * len(pairs)), squeeze=False)
    for row, (task, lr, outputs) in enumerate(pairs):
        _show(axes[row][0], lr.permute(1, 2, 0).numpy(), f"{task}: input {lr.shape[-1]} px")
        for col, (name, image) in enumerate(outputs.items(), start=1):
            _show(axes[row][col], image.permute(1, 2, 0).clamp(0, 1).numpy(), name)
    return _save(
        fig,
        path,
        "Size-varied study: the most detailed test input of each task, each model's output at the target size "
        "and the ground truth, enlarged by pixel repetition.",
    )


def figure_heatmap(table, path: Path, *, title: str, noise=None) -> str:
    """A variants x scales table of dB differences as a diverging heat map, each cell labelled."""
    values = table.to_numpy(dtype=float)
    limit = max(np.nanmax(np.abs(values)), 0.05)
    fig, ax = plt.subplots(figsize=(1.3 * values.shape[1] + 2.5, 0.6 * values.shape[0] + 1.6))
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


def detail_score(image: torch.Tensor) -> float:
    """Mean absolute difference between vertically adjacent pixels: which test photograph has the most to show."""
    return float((image[:, 1:] - image[:, :-1]).abs().mean())


def make_figures(study: Study, params: dict, models: Path, prepared: PreparedData, out: Path) -> dict:
    """Every qualitative figure whose models exist in this profile; returns {file name: caption}."""
    captions = {}
    checkpoint = params["eval"]["checkpoint"]

    def model(variant: str, name: str = checkpoint):
        path = models / variant / name
        return load_checkpoint(path)[0].eval() if path.is_file() else None

    for dataset in study.datasets():
        captions[f"psnr_vs_scale_{dataset}.png"] = plot_psnr_vs_scale(
            study, dataset, out / f"psnr_vs_scale_{dataset}.png"
        )
        diffs = differences(study, dataset, list(ABLATIONS))
        if not diffs.empty:
            noise = study.noise(dataset)
            spread = ", ".join(f"x{s} {2 * noise[s]:.2f} dB" for s in noise.index if not np.isnan(noise[s]))
            captions[f"rq4_ablations_{dataset}.png"] = figure_heatmap(
                diffs,
                out / f"rq4_ablations_{dataset}.png",
                title=f"ablation minus LIIF, {dataset} test set (dB)",
                noise=spread or None,
            )
    liif, bicubic, metasr = model("liif"), model("bicubic"), model("metasr")
    datasets = study.datasets()
    if liif is not None and datasets:
        paths = list_images(prepared.hr(datasets[0], "test"))
        images = {p.stem: load_image(p)[0] for p in paths}
        detail = sorted(images, key=lambda n: -detail_score(images[n]))
        methods = {k: m for k, m in (("Bicubic", bicubic), ("LIIF", liif)) if m is not None}
        captions["rq1_textures_x4.png"] = figure_method_grid(
            methods, {n: images[n] for n in detail[:3]}, scales=[4], crop=96, path=out / "rq1_textures_x4.png"
        )
        methods = {k: m for k, m in (("Bicubic", bicubic), ("MetaSR", metasr), ("LIIF", liif)) if m is not None}
        captions["rq2_scales.png"] = figure_method_grid(
            methods, {detail[0]: images[detail[0]]}, scales=[4, 12, 30], crop=120, path=out / "rq2_scales.png"
        )
        captions["rq2_zoom.png"] = figure_zoom_strip(
            liif, images[detail[0]], lr_crop=24, path=out / "rq2_zoom.png", image_name=detail[0]
        )
        captions["rq4_cell.png"] = figure_cell_sizes(
            liif,
            model("liif-c"),
            images[detail[0]],
            scale=30,
            lr_crop=12,
            path=out / "rq4_cell.png",
            image_name=detail[0],
        )
    pairs = size_varied_samples(params, models, prepared)
    if pairs:
        captions["rq3_samples.png"] = figure_size_varied(pairs, out / "rq3_samples.png")
    return captions


def size_varied_samples(params: dict, models: Path, prepared: PreparedData) -> list:
    """(task, input, {variant: output, ground truth}) for the most detailed test square of each size-varied task."""
    tasks = {}
    for variant in params["variants"]:
        train = resolve_variant(params, variant)["train"] or {}
        if train.get("task"):
            tasks.setdefault((train["dataset"], tuple(train["task"])), []).append(variant)
    pairs = []
    for (dataset, (lr_size, hr_size)), variants in tasks.items():
        hr_paths = list_images(prepared.sized(dataset, "test", hr_size))
        hr_path = max(hr_paths, key=lambda p: detail_score(load_image(p)[0]))  # not a flat patch of sky
        lr = load_image(prepared.sized(dataset, "test", lr_size) / hr_path.name)[0]
        outputs = {}
        for variant in variants:
            path = models / variant / params["eval"]["task_checkpoint"]
            if path.is_file():
                model = load_checkpoint(path)[0].eval()
                outputs[variant] = render_image(model, lr, (hr_size, hr_size)).permute(2, 0, 1)
        outputs["ground truth"] = load_image(hr_path)[0]
        pairs.append((f"{lr_size}->{hr_size}", lr, outputs))
    return pairs
