"""``params.yaml``: the single source of configuration.

Its sections: ``data`` (datasets and where they come from), ``model`` and
``train`` (the base model and recipe), ``variants`` (overrides of those, see
``liif.variants``), ``eval`` (datasets, protocols and scales), ``runtime``
(how to run: device, threads, checkpoint frequency, tracking). Profiles under
``profiles/`` are patches of it.
"""

import copy
import json
import os
from pathlib import Path

import yaml

SOURCES = ("official", "mirror", "local", "sample")  # where a dataset comes from (liif.sources)
ENCODER_FAMILY = {"edsr-baseline": "edsr", "edsr": "edsr", "rdn": "rdn"}  # encoders that share arguments
RUNTIME_ENV = "LIIF_RUNTIME"  # a JSON object of runtime keys for one process (liif repro --jobs)
RUNTIME_KEYS = {"device", "threads", "workers", "nproc", "compile", "channels_last", "save_every", "tracking"}


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run from the repository root")
    with open(path) as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    return params


def runtime_settings(params: dict) -> dict:
    """The ``runtime`` section, checked (``liif.schema.Runtime``): how a stage runs, never what it computes, so no
    result depends on it (it is not a DVC parameter and not part of a variant's identity).

    ``LIIF_RUNTIME``, a JSON object in the environment, overrides its keys for one process: ``liif repro`` gives
    each parallel job its share of the cores this way (``{"threads": 1}``) without touching params.yaml.
    """
    from liif.schema import ParamsError, check_params  # the schema reads this module's constants

    override = os.environ.get(RUNTIME_ENV)
    if override:
        try:
            values = json.loads(override)
        except json.JSONDecodeError as e:
            raise ParamsError(f"{RUNTIME_ENV}={override!r}: not a JSON object ({e.msg})") from None
        if not isinstance(values, dict):
            raise ParamsError(f"{RUNTIME_ENV}={override!r}: expected a JSON object of runtime keys")
        params = {**params, "runtime": deep_merge(params.get("runtime") or {}, values)}
    check_params(params, sections=("runtime",))
    return params["runtime"]


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_profile(params: dict, profile: dict) -> dict:
    """``params`` with a profile's values: sections deep-merged; the lists of variants and of datasets
    (``data.datasets``, ``eval.datasets``) replaced, since a profile names all of them.

    ``every_variant`` (model/train overrides) is merged into each variant's own overrides, winning over
    them: ``profiles/paper-smoke.yaml`` shortens the training of every paper variant this way.
    """
    out = deep_merge(params, {k: v for k, v in profile.items() if k not in ("variants", "every_variant")})
    if "variants" in profile:
        out["variants"] = copy.deepcopy(profile["variants"])
    if "every_variant" in profile:
        out["variants"] = {
            name: deep_merge(own or {}, profile["every_variant"]) for name, own in out["variants"].items()
        }
    for section, key in (("data", "datasets"), ("eval", "datasets")):
        if key in profile.get(section, {}):
            out[section][key] = copy.deepcopy(profile[section][key])
    return out


def merge_model(base: dict, override: dict) -> dict:
    """``deep_merge`` except that an encoder of another family replaces the base encoder block:
    an RDN has none of EDSR's ``n_resblocks``/``n_feats``."""
    merged = deep_merge(base, override)
    encoder = override.get("encoder") or {}
    family = ENCODER_FAMILY.get(encoder.get("name", base["encoder"]["name"]))
    if family != ENCODER_FAMILY.get(base["encoder"]["name"]):
        merged["encoder"] = copy.deepcopy(encoder)
    return merged
