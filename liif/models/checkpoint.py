"""Checkpoints: this project's self-describing format and the reference implementation's.

Ours is a plain dict, readable with ``torch.load(weights_only=True)``::

    {"format": "liif-repro", "version": 1,
     "model": {"name": ..., "args": {...}},          # liif.models.build_model
     "state_dict": {...},
     "train_state": {...} | None,                   # epoch, optimizer, scheduler, history
     "metadata": {...}}

The released LIIF weights (``{"model": {"name", "args", "sd"}, "epoch", ...}``)
load unchanged: the registered model that reads their spec (``SRModel.from_official``) translates it to its
constructor arguments and their names to its own (``SRModel.official_state_dict``).
"""

import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from liif.errors import UserError
from liif.files import atomic_write
from liif.models import MODELS, build_model, model_spec

FORMAT = "liif-repro"
VERSION = 1


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_checkpoint(
    path: str | Path, *, model: nn.Module, train_state: dict | None = None, metadata: dict | None = None
):
    """Write a checkpoint atomically: a crash leaves the old file or the new one, never half of one."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_spec(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_state": train_state,
        "metadata": metadata or {},
    }
    with atomic_write(path) as f:
        torch.save(state, f)


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw dict (tensors mapped to CPU) with clear errors for unusable files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x80")):  # torch zip or legacy pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (starts with {magic!r})")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: holds Python objects other than tensors and plain data (loaded with weights_only=True)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, truncated or corrupted? ({reason}); {_recovery(path)}"
        ) from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a LIIF checkpoint (holds a {type(raw).__name__}, expected a dict)")
    return raw


def _recovery(path: str | Path) -> str:
    """How to get a usable file back: DVC restores a pipeline checkpoint (``models/<variant>/``) or retrains it."""
    path = Path(path)
    if path.parent.parent.name == "models":
        folder, variant = path.parent, path.parent.name
        return (
            f"to recover, restore the committed checkpoint with `dvc checkout -f {folder}` (after `dvc pull {folder}` "
            f"if the cache lacks it), or delete {path.name} and run `dvc repro train@{variant}` to retrain"
        )
    return (
        "replace it with a complete copy (a pipeline checkpoint: `dvc checkout -f models/<variant>` restores "
        "the committed one, or delete it and run `dvc repro train@<variant>` to retrain)"
    )


def official_to_spec(model: dict) -> dict:
    """Our model spec for a reference-format ``{name, args}`` model entry: the registered model that reads it."""
    for name in MODELS.names():
        args = MODELS.get(name).from_official(model["name"], model["args"])
        if args is not None:
            return {"name": name, "args": args}
    raise ValueError(f"unsupported model {model['name']!r}")


def _describe_mismatch(model: nn.Module, state_dict: dict) -> str | None:
    expected = model.state_dict()
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return "the state dict is not a mapping of names to tensors"
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[0]})")
    return "; ".join(parts) or None


def _least_tensors(spec: dict) -> int:
    """How many weight tensors the model a spec declares holds at least (``SRModel.least_tensors``)."""
    args = spec.get("args") if isinstance(spec.get("args"), dict) else {}
    return MODELS.get(spec["name"]).least_tensors(args) if spec.get("name") in MODELS else 0


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes; returns ``(model in eval mode, raw dict)``.

    ``raw["format"]`` is ``"liif-repro"`` or ``"official"``.
    """
    raw = read_checkpoint(path)
    try:
        if raw.get("format") == FORMAT:
            spec, state_dict = raw["model"], raw["state_dict"]
        elif isinstance(raw.get("model"), dict) and {"name", "args", "sd"} <= raw["model"].keys():
            spec = official_to_spec(raw["model"])
            state_dict = MODELS.get(spec["name"]).official_state_dict(raw["model"]["sd"])
            raw = {**raw, "format": "official"}
        else:
            raise CheckpointError(
                f"{path}: not a LIIF checkpoint (keys {sorted(raw)[:6]}; expected a liif-repro "
                "checkpoint or the reference format with model.name/args/sd)"
            )
        least = _least_tensors(spec)
        if isinstance(state_dict, dict) and least > len(state_dict):
            raise CheckpointError(
                f"{path}: declares a {spec.get('name')} of at least {least:,} weight tensors "
                f"({json.dumps(spec.get('args'))[:200]}) but holds {len(state_dict):,}: a corrupted or forged "
                "model description; refused before building it"
            )
        with torch.device("meta"):  # shapes only: a declared architecture costs no memory until it is checked
            skeleton = build_model(spec)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f"{path}: malformed model description ({type(e).__name__}: {e})") from None
    problem = _describe_mismatch(skeleton, state_dict)
    if problem:
        raise CheckpointError(f"{path}: weights do not match the {spec['name']} architecture it declares: {problem}")
    bad = next((k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(
            f"{path}: tensor {bad} holds NaN or infinite weights (a diverged or corrupted model), refused; "
            f"{_recovery(path)}"
        )
    model = build_model(spec)
    model.load_state_dict(state_dict)
    raw["spec"] = spec
    return model.to(device).eval(), raw


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
