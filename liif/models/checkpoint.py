"""Checkpoints: this project's self-describing format and the reference implementation's.

Ours is a plain dict, readable with ``torch.load(weights_only=True)``::

    {"format": "liif-repro", "version": 1,
     "model": {"name": "liif", "args": {...}},      # liif.models.build_model
     "state_dict": {...},
     "train_state": {...} | None,                   # epoch, optimizer, scheduler, history
     "metadata": {...}}

The released LIIF weights (``{"model": {"name", "args", "sd"}, "epoch", ...}``)
load unchanged: their spec is translated to our constructor arguments and the
decoder's ``imnet.`` prefix becomes ``decoder.``.
"""

import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from liif.errors import UserError
from liif.files import atomic_write
from liif.models import build_model, model_spec

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


def _official_encoder(spec: dict) -> tuple[dict, int | None]:
    """Translate an official encoder spec into our encoder kwargs and its up-sampling scale (or None)."""
    name, args = spec.get("name"), dict(spec.get("args", {}))
    upscale = None if args.get("no_upsampling", False) else int(args.get("scale", 2))
    if name in ("edsr-baseline", "edsr"):
        keep = {"n_resblocks": "n_resblocks", "n_feats": "n_feats", "res_scale": "res_scale"}
    elif name == "rdn":
        from liif.encoders import RDN_CONFIGS

        blocks, convs, growth = RDN_CONFIGS[args.get("RDNconfig", "B")]
        out = {"name": "rdn", "G0": args.get("G0", 64), "kernel_size": args.get("RDNkSize", 3)}
        out.update(n_blocks=blocks, n_convs=convs, growth=growth)
        return out, upscale
    else:
        raise ValueError(f"unsupported encoder {name!r}")
    return {"name": name, **{ours: args[theirs] for theirs, ours in keep.items() if theirs in args}}, upscale


def official_to_spec(model: dict) -> dict:
    """Our model spec for an official ``{name, args}`` model entry."""
    name, args = model["name"], model["args"]
    encoder, upscale = _official_encoder(args["encoder_spec"])
    if name == "liif":
        imnet = args.get("imnet_spec")
        if imnet is None:
            if upscale is None:
                raise ValueError("a decoder-less model needs an encoder with an up-sampler")
            return {"name": "fixed-scale", "args": {"encoder": encoder, "scale": upscale}}
        return {
            "name": "liif",
            "args": {
                "encoder": encoder,
                "decoder_hidden": list(imnet["args"]["hidden_list"]),
                "feat_unfold": args.get("feat_unfold", True),
                "local_ensemble": args.get("local_ensemble", True),
                "cell_decode": args.get("cell_decode", True),
            },
        }
    if name == "metasr":
        hidden = args.get("imnet_spec", {}).get("args", {}).get("hidden_list", [256])
        return {"name": "metasr", "args": {"encoder": encoder, "predictor_hidden": hidden[0]}}
    raise ValueError(f"unsupported model {name!r}")


def _official_state_dict(sd: dict) -> dict:
    out = {}
    for key, value in sd.items():
        if key.startswith(("encoder.sub_mean.", "encoder.add_mean.")):
            continue  # built but never applied by the reference (spec 2.1)
        out["decoder." + key[len("imnet.") :] if key.startswith("imnet.") else key] = value
    return out


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


def _count(args: dict, key: str, default: int) -> int:
    value = args.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _least_tensors(spec: dict) -> int:
    """How many weight tensors the model a spec declares holds at least, counted without building it: a file
    holding fewer cannot match, and a forged count (300,000 residual blocks) would take minutes to build."""
    args = spec.get("args") if isinstance(spec.get("args"), dict) else {}
    encoder = args.get("encoder") if isinstance(args.get("encoder"), dict) else {}
    least = 0
    if encoder.get("name") in ("edsr-baseline", "edsr"):  # two convs (weight, bias) per residual block
        least += 4 * _count(encoder, "n_resblocks", 16 if encoder["name"] == "edsr-baseline" else 32)
    elif encoder.get("name") == "rdn":  # a conv per dense layer and the fusion conv per block
        least += _count(encoder, "n_blocks", 16) * 2 * (_count(encoder, "n_convs", 8) + 1)
    hidden = args.get("decoder_hidden")
    if isinstance(hidden, list | tuple):
        least += 2 * len(hidden)
    return least


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
            state_dict = _official_state_dict(raw["model"]["sd"])
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
