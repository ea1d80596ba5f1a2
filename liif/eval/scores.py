"""Evaluation on a folder of HR images, as the paper's ``test.py`` does (spec section 4).

LR inputs either come from a folder of pre-made images paired by the EDSR
naming (``name.png`` <-> ``namex{S}.png``), with HR cropped to LR x S, or are
made from HR: crop to a multiple of the scale, then PIL-bicubic down-sampling.
The paper uses the shipped (MATLAB-bicubic) LR images at x2, x3 and x4 and
makes the others; ``evaluate_variant`` does the same and refuses to silently
switch degradation when a shipped LR folder is missing.

A model of one grey channel (``model.channels: 1``) is scored on grey images:
HR and shipped LR images are read by the one grey rule (``liif.images.grey_image``),
LR inputs made from the grey HR image, and every metric scores that channel.
"""

import json
import math
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import torch
from tqdm import tqdm

from liif.config.variants import config_hash
from liif.data.layout import PreparedData
from liif.eval.render import render_image
from liif.files import DIVERGED, LAST, SUMMARY
from liif.images import ImageError, grey_image, image_size, list_images, load_image, pil_bicubic
from liif.metrics import METRICS
from liif.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from liif.protocol import SHIPPED_LR_SCALES


def lr_partner(hr_path: Path, lr_dir: Path, scale: int) -> Path:
    """The EDSR naming: ``0801.png`` at x2 pairs with ``0801x2.png``."""
    for candidate in (lr_dir / f"{hr_path.stem}x{scale}{hr_path.suffix}", lr_dir / f"{hr_path.stem}x{scale}.png"):
        if candidate.is_file():
            return candidate
    raise ImageError(f"{lr_dir}: no LR image {hr_path.stem}x{scale}{hr_path.suffix} for {hr_path.name}")


def check_pair(hr_path: Path, hr_size: tuple[int, int], lr_path: Path, lr_size: tuple[int, int], scale: int):
    """Refuse an LR image that is not its HR image down-scaled ``scale`` times: HR cropped to a multiple of
    the scale (modcrop) must be exactly LR x scale, i.e. each HR side exceeds LR x scale by 0 to scale - 1."""
    (H, W), (h, w) = hr_size, lr_size
    if 0 <= H - h * scale < scale and 0 <= W - w * scale < scale:
        return
    implied = f"x{H / h:.3g}" if f"{H / h:.3g}" == f"{W / w:.3g}" else f"x{H / h:.3g} by height, x{W / w:.3g} by width"
    raise ImageError(
        f"{lr_path} ({h}x{w}) is not {hr_path} ({H}x{W}) at x{scale}: their sizes imply {implied} "
        f"(HR must be LR x {scale}, up to a modcrop remainder below {scale}); is {lr_path.parent} "
        "the LR folder of another scale?"
    )


def read_as(image: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """An RGB image as ``model`` reads it: itself, or for a grey model its grey by the one rule."""
    return grey_image(image) if model.channels == 1 else image


def downsample_for_test(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop HR to a multiple of the scale and PIL-bicubic down-sample it (the OOD test inputs)."""
    h, w = hr.shape[-2:]
    lr_h, lr_w = math.floor(h / scale), math.floor(w / scale)
    if lr_h < 1 or lr_w < 1:
        raise ImageError(f"image of {h}x{w} is too small for scale {scale}")
    hr = hr[:, : round(lr_h * scale), : round(lr_w * scale)]
    return pil_bicubic(hr, (lr_h, lr_w)), hr


DEFAULT_METRICS = ("psnr", "ssim")  # the command line's; the pipeline's are eval.metrics of params.yaml


class ImageScore(SimpleNamespace):
    """One test image's scores: ``name``, one attribute per metric (``psnr``, ``ssim``, ...) and ``grey`` (the HR
    original was greyscale)."""


def score_image(
    pred: torch.Tensor,
    hr: torch.Tensor,
    *,
    name: str,
    greyscale: bool,
    metrics: Sequence[str],
    protocol: str = "none",
    scale: float = 1,
    grey: bool = False,
) -> ImageScore:
    """Every metric of ``metrics`` (registered names) on one prediction, under ``protocol`` at ``scale``."""
    values = {
        m: METRICS.get(m, where="eval.metrics")(pred, hr, protocol=protocol, scale=scale, grey=grey) for m in metrics
    }
    return ImageScore(name=name, **values, grey=greyscale)


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
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> list[ImageScore]:
    """Score ``model`` on each HR image at ``scale`` with each of ``metrics``; see the module docstring for the LR
    inputs."""
    if lr_dir is not None and scale != int(scale):
        raise ImageError(f"paired LR folders need an integer scale, got {scale}")
    partners = {}  # every pair is checked from the file headers before any image is rendered
    for hr_path in hr_paths if lr_dir is not None else []:
        partners[hr_path] = lr_partner(hr_path, Path(lr_dir), int(scale))
        check_pair(hr_path, image_size(hr_path), partners[hr_path], image_size(partners[hr_path]), int(scale))
    scores = []
    for hr_path in tqdm(hr_paths, desc=desc, unit="img", disable=not progress, leave=False):
        hr, notice = load_image(hr_path)
        grey = notice is not None and bool((hr[0] == hr[1]).all() and (hr[1] == hr[2]).all())
        hr = read_as(hr, model)
        if lr_dir is not None:
            lr = read_as(load_image(partners[hr_path])[0], model)
            check_pair(hr_path, tuple(hr.shape[-2:]), partners[hr_path], tuple(lr.shape[-2:]), int(scale))
            hr = hr[:, : lr.shape[1] * int(scale), : lr.shape[2] * int(scale)]
        else:
            lr, hr = downsample_for_test(hr, scale)
        pred = render_image(model, lr, tuple(hr.shape[-2:]), device=device).permute(2, 0, 1)
        use_grey = grey_luma and grey
        scores.append(
            score_image(
                pred,
                hr,
                name=hr_path.name,
                greyscale=grey,
                metrics=metrics,
                protocol=protocol,
                scale=scale,
                grey=use_grey,
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
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> list[ImageScore]:
    """Fixed-size tasks (CelebA-HQ L -> H): each LR image rendered at its HR image's size, scored on RGB (or a
    grey model's channel) with no shave (the ``none`` protocol)."""
    scores = []
    for hr_path in tqdm(list_images(hr_dir), desc=desc, unit="img", disable=not progress, leave=False):
        lr_path = Path(lr_dir) / hr_path.name
        if not lr_path.is_file():
            raise ImageError(f"{lr_dir}: no LR image {hr_path.name} for {hr_path}")
        hr, lr = read_as(load_image(hr_path)[0], model), read_as(load_image(lr_path)[0], model)
        pred = render_image(model, lr, tuple(hr.shape[-2:]), device=device).permute(2, 0, 1)
        scores.append(score_image(pred, hr, name=hr_path.name, greyscale=False, metrics=metrics))
    return scores


def evaluate_variant(
    config: dict, *, model_dir: str | Path, prepared: PreparedData, evaluation: dict, device: str = "auto"
) -> tuple[dict, list[str]]:
    """Score a trained variant as the paper reports it: returns the means ``{metric: {dataset: {"x2": mean,
    ...}}}`` of ``metrics/eval/<v>.json`` and the per-image rows of its TSV (columns: ``per_image_header``).

    ``evaluation`` is the ``eval`` section of params.yaml; its ``metrics`` are computed, in that order. A
    size-varied-study variant (``train.task`` = (L, H)) is scored with ``task_checkpoint`` on its own L -> H
    task on RGB with no shave (spec 3.4); every other variant with ``checkpoint`` on each of
    ``evaluation["datasets"]`` (protocol and scales per dataset). The checkpoint must have been trained for
    exactly this configuration.
    """
    recipe = config["train"] or {}
    refuse_diverged(config, model_dir)
    if config["train"] is not None:  # Bicubic learns nothing: it has no training to finish
        finished_training(config, model_dir)
    model = load_trained(
        config, Path(model_dir) / evaluation["task_checkpoint" if recipe.get("task") else "checkpoint"]
    )
    names = list(evaluation["metrics"])
    means, rows = {m: {} for m in names}, []

    def record(dataset: str, key: str, scores: list[ImageScore]):
        for m in names:
            means[m].setdefault(dataset, {})[key] = mean_score(scores, m)
        rows.extend(per_image_row(dataset, key.removeprefix("x"), s, names) for s in scores)

    if recipe.get("task"):
        name, (lr_size, hr_size) = recipe["dataset"], recipe["task"]
        scores = evaluate_task(
            model,
            prepared.sized(name, "test", lr_size),
            prepared.sized(name, "test", hr_size),
            device=device,
            desc=f"{config['variant']} {name} {lr_size}->{hr_size}",
            metrics=names,
        )
        record(name, f"{lr_size}-{hr_size}", scores)
        return means, rows
    for name, spec in evaluation["datasets"].items():
        hr_paths = list_images(prepared.hr(name, "test"))
        for m in names:
            means[m][name] = {}
        for scale in spec["scales"]:  # validated: the paper's scales of the protocol unless listed
            lr_dir = None
            if scale in SHIPPED_LR_SCALES:
                lr_dir = prepared.lr(name, "test", scale)
                if not lr_dir.is_dir():
                    raise ImageError(
                        f"{lr_dir}: missing; x{scale} is evaluated on the shipped (MATLAB-bicubic) LR images "
                        f"(spec section 4). Add {scale} to lr_scales of data.datasets.{name} (or data.lr_scales for "
                        f"the sample suite) and run dvc repro, or drop x{scale} from eval.datasets.{name}.scales"
                    )
            scores = evaluate_pairs(
                model,
                hr_paths,
                scale=scale,
                protocol=spec["protocol"],
                lr_dir=lr_dir,
                device=device,
                desc=f"{config['variant']} {name} x{scale}",
                metrics=names,
            )
            record(name, f"x{scale}", scores)
    return means, rows


def per_image_header(metrics: Sequence[str]) -> str:
    """The TSV header: ``dataset, scale, image`` and one column per metric."""
    return "\t".join(["dataset", "scale", "image", *metrics])


def per_image_row(dataset: str, scale: str, score: ImageScore, metrics: Sequence[str]) -> str:
    """One TSV row; each metric with its own decimals."""
    values = [f"{getattr(score, m):.{METRICS.get(m).digits}f}" for m in metrics]
    return "\t".join([dataset, scale, score.name, *values])


def mean_score(scores: list[ImageScore], metric: str) -> float:
    """The mean over images as the metrics file holds it, rounded to the metric's decimals."""
    return round(sum(getattr(s, metric) for s in scores) / len(scores), METRICS.get(metric).digits)


def diverged(model_dir: str | Path, of_hash: str | None = None) -> dict | None:
    """The record ``liif.train.loop`` left in ``model_dir`` when its run diverged (``variant``, ``config_hash``,
    ``epoch``, ``loss``, ``rule``, ``remedy``, ``last_good_epoch``), or None. With ``of_hash`` (a
    ``config_hash``), only a record of that configuration counts. A run that saves an epoch removes it."""
    path = Path(model_dir) / DIVERGED
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}); delete it and rerun dvc repro") from None
    if of_hash is not None and record.get("config_hash") != of_hash:
        return None
    return record


def refuse_diverged(config: dict, model_dir: str | Path):
    """Refuse the model of a training of ``config`` that diverged, saying what to change."""
    stopped = diverged(model_dir, config_hash(config))
    if stopped:
        loss, v = stopped.get("loss"), config["variant"]
        loss = f"{loss:.4g}" if isinstance(loss, float) else loss
        fix = stopped.get("remedy") or f"change the recipe, then rerun `dvc repro train@{v}`"
        raise CheckpointError(
            f"{model_dir}: the training of {v} diverged at epoch {stopped.get('epoch')} (loss {loss}), "
            f"so it is not evaluated; {fix}"
        )


def finished_training(config: dict, model_dir: str | Path) -> dict:
    """The ``summary.json`` of the finished training of ``config`` in ``model_dir``; a training that stopped
    early (killed, diverged, a marker deleted by hand) or that wrote its summary under another configuration
    is refused before anything is scored, so no metrics file describes a half-trained model."""
    refuse_diverged(config, model_dir)
    model_dir, v = Path(model_dir), config["variant"]
    rerun = f"so it is not evaluated; run `dvc repro train@{v}` to finish it"
    epochs = (config["train"] or {}).get("epochs")
    if epochs:
        last = model_dir / LAST
        epoch = ((read_checkpoint(last).get("train_state") or {}).get("epoch")) if last.is_file() else None
        if epoch != epochs:
            at = f"is at epoch {epoch} of {epochs}" if epoch is not None else "is missing"
            raise CheckpointError(f"{last}: {at}: the training of {v} did not finish, {rerun}")
    path = model_dir / SUMMARY
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing: the training of {v} did not finish, {rerun}") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e}), {rerun}") from None
    stored = summary.get("config_hash") if isinstance(summary, dict) else None
    if stored != config_hash(config):
        raise CheckpointError(
            f"{path}: written by a training of configuration {stored}, not {config_hash(config)} "
            f"(configs/{v}.json), {rerun}"
        )
    return summary


def load_trained(config: dict, path: Path) -> torch.nn.Module:
    """The model of a checkpoint written by ``liif.train.loop`` for ``config``; another variant's or another
    configuration's weights are refused, so a metrics file can never describe the wrong model."""
    model, raw = load_checkpoint(path)
    stored = raw.get("metadata") or {}
    expected = {"variant": config["variant"], "config_hash": config_hash(config)}
    if {k: stored.get(k) for k in expected} != expected:
        raise CheckpointError(
            f"{path}: trained as variant {stored.get('variant')!r} with configuration {stored.get('config_hash')}, "
            f"not {expected['variant']!r} with {expected['config_hash']} (configs/{config['variant']}.json); "
            f"run dvc repro to train it"
        )
    return model
