"""``params.yaml``: the single source of configuration, and how a variant is resolved from it.

A variant is a set of overrides of the base ``model`` and ``train`` sections,
so ``dvc exp run -S model.cell_decode=false`` reaches every variant that does
not set that key itself. ``resolve_variant`` returns the complete, explicit
configuration a stage runs with; it is written to ``configs/<variant>.json``
and that file, not the whole of ``params.yaml``, is what training depends on.
"""

import copy
import hashlib
import json
from pathlib import Path

import yaml


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run from the repository root")
    with open(path) as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    return params


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def model_spec_from_section(model: dict) -> dict:
    """The ``params.yaml`` model section -> a ``liif.models.build_model`` spec."""
    name = model["name"]
    if name == "liif":
        keys = ("encoder", "decoder_hidden", "feat_unfold", "local_ensemble", "cell_decode")
        return {"name": "liif", "args": {k: model[k] for k in keys}}
    if name == "metasr":
        return {"name": "metasr", "args": {"encoder": model["encoder"], "predictor_hidden": model["predictor_hidden"]}}
    if name == "fixed-scale":
        return {"name": "fixed-scale", "args": {"encoder": model["encoder"], "scale": int(model["scale"])}}
    if name == "bicubic":
        return {"name": "bicubic", "args": {}}
    raise ValueError(f"model.name {name!r}: expected liif, metasr, fixed-scale or bicubic")


def resolve_variant(params: dict, variant: str) -> dict:
    """The full configuration of one variant: base sections with the variant's overrides applied."""
    variants = params.get("variants") or {}
    if variant not in variants:
        raise KeyError(f"variant {variant!r} is not in params.yaml variants ({', '.join(variants)})")
    override = variants[variant] or {}
    unknown = set(override) - {"model", "train"}
    if unknown:
        raise ValueError(f"variants.{variant}: only model and train can be overridden, not {sorted(unknown)}")
    model = deep_merge(params["model"], override.get("model", {}))
    train = deep_merge(params["train"], override.get("train", {}))
    if model["name"] == "fixed-scale" and not train.get("task"):  # paired LR at its own scale (spec 2.5)
        train["scale_min"] = train["scale_max"] = int(model["scale"])
    return {"variant": variant, "model": model_spec_from_section(model), "train": train}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


REPLACED_BY_PROFILES = ("variants", "data.datasets", "eval.datasets")  # a profile's list is complete, not a patch


def apply_profile(params: dict, profile: dict) -> dict:
    """``params`` with a profile's values: sections deep-merged, variants and datasets replaced."""
    out = deep_merge(params, {k: v for k, v in profile.items() if k != "variants"})
    if "variants" in profile:
        out["variants"] = copy.deepcopy(profile["variants"])
    for section in ("data", "eval"):
        if "datasets" in profile.get(section, {}):
            out[section]["datasets"] = copy.deepcopy(profile[section]["datasets"])
    return out
