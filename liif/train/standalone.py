"""``liif train --images DIR --out model.pth``: one model trained on a folder of images, without DVC.

The recipe is a variant of a params.yaml (default: the base variant of the project's own params.yaml, the CPU
default), with the folder as its dataset (``liif.sources.folder``: its ``train/`` and ``val/`` sub-folders, or a
tenth of its images held out for validation). ``--epochs`` rescales the learning-rate milestones with it.

The work lives beside the output, in ``<out>.work/``: the prepared images and the run folder whose
``epoch-last.pth`` a killed run resumes from (``--resume``). The finished weights are written to ``out``
atomically; the work folder stays (delete it when done) so a finished run can be extended.
"""

import copy
import shutil
from pathlib import Path

from liif.config.params import ParamsError, load_params
from liif.config.schema import FOLDER_SOURCE, check_sections, runtime_settings
from liif.config.variants import check_params, resolve_variant
from liif.data.layout import PreparedData
from liif.data.prepare import prepare_dataset
from liif.errors import UserError
from liif.files import LAST, atomic_write
from liif.images import list_images
from liif.types import SPLITS

PROJECT_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
DATASET = "images"  # the folder's name inside the work folder's prepared data


class StandaloneError(UserError):
    """A request ``liif train`` cannot carry out; the message names the flag or file."""


def work_folder(out: Path) -> Path:
    return out.with_name(f"{out.name}.work")


def base_variant(params: dict) -> str:
    """The variant whose role is ``base`` (the study's LIIF)."""
    for name, override in (params.get("variants") or {}).items():
        if (override or {}).get("role") == "base":
            return name
    raise ParamsError("params.yaml variants: no variant has role base; name one with --variant")


def folder_params(
    params: dict, images: Path, *, variant: str, epochs: int | None, scale_max: float | None, val: int | None
) -> dict:
    """``params`` reduced to one variant that trains on ``images`` (validated on its held-out images)."""
    out = copy.deepcopy(params)
    spec = {"path": str(images)}
    if not any((images / split).is_dir() for split in SPLITS):
        count = len(list_images(images))
        spec["split"] = {"val": val if val is not None else max(1, count // 10), "test": 0}
    out["data"] = {**out["data"], "datasets": {}, "folders": {DATASET: spec}}
    own = copy.deepcopy(out["variants"][variant] or {})
    train = own.setdefault("train", {})
    train.update(dataset=DATASET, val_dataset=None, val_split="val")
    if epochs is not None:
        before = train.get("epochs", out["train"]["epochs"])
        milestones = train.get("milestones", out["train"]["milestones"])
        train["epochs"] = epochs
        train["milestones"] = sorted({max(1, min(epochs, round(m * epochs / before))) for m in milestones})
    if scale_max is not None:
        train["scale_max"] = scale_max
        train["scale_min"] = min(train.get("scale_min", out["train"]["scale_min"]), scale_max)
    out["variants"] = {variant: {**own, "role": "base"}}
    out["eval"] = {**out["eval"], "datasets": {}}
    return out


def train_on_folder(
    images: str | Path,
    out: str | Path,
    *,
    epochs: int | None = None,
    scale_max: float | None = None,
    val: int | None = None,
    device: str | None = None,
    resume: bool = False,
    params_path: str | Path = PROJECT_PARAMS,
    variant: str | None = None,
) -> dict:
    """Train on a folder; returns the run's summary (``summary.json``). See the module's docstring."""
    from liif.train.loop import train_variant  # torch and the models: only once the request is known to be sound

    images, out = Path(images), Path(out)
    if out.suffix != ".pth":
        raise StandaloneError(f"--out {out}: name a .pth file, e.g. {out.with_suffix('.pth')}")
    if not out.parent.is_dir():
        raise StandaloneError(f"--out {out}: folder {out.parent} does not exist")
    work = work_folder(out)
    if not resume and (out.exists() or work.exists()):
        there = work if work.exists() else out
        raise StandaloneError(
            f"{there} exists: --resume continues that run; otherwise delete it or choose another --out"
        )
    params = load_params(params_path)
    variant = variant or base_variant(params)
    if variant not in (params.get("variants") or {}):
        raise StandaloneError(f"--variant {variant}: not a variant of {params_path}")
    params = check_params(folder_params(params, images, variant=variant, epochs=epochs, scale_max=scale_max, val=val))
    config = resolve_variant(params, variant)
    if config["train"] is None:
        raise StandaloneError(f"--variant {variant}: its model learns nothing (nothing to train)")
    data = check_sections(params, sections=("data",))["data"]
    prepared = PreparedData(work / "data")
    spec = {"source": FOLDER_SOURCE, **data["folders"][DATASET]}
    prepare_dataset(DATASET, spec, raw_root=work / "raw", prepared=prepared, lr_scales=data["lr_scales"])
    runtime = copy.deepcopy(runtime_settings(params))
    runtime["tracking"]["enabled"] = False  # a run outside the study: nothing for the study's MLflow store
    if device is not None:
        runtime["device"] = device
    summary = train_variant(config, prepared=prepared, out_dir=work / "run", runtime=runtime)
    with open(work / "run" / LAST, "rb") as src, atomic_write(out) as dst:
        shutil.copyfileobj(src, dst)
    return summary
