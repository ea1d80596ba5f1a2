"""``params.yaml``: the single source of configuration.

Its sections: ``data`` (datasets and where they come from), ``model`` and
``train`` (the base model and recipe), ``variants`` (overrides of those, see
``liif.config.variants``), ``eval`` (datasets, protocols and scales), ``runtime``
(how to run: device, threads, checkpoint frequency, tracking). Profiles under
``profiles/`` are patches of it.
"""

import copy
import datetime
import io
import math
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from liif.errors import UserError

RUNTIME_ENV = "LIIF_RUNTIME"  # a JSON object of runtime keys for one process (liif repro --jobs)


PROFILE_KEYS = ("data", "model", "train", "eval", "variants", "report", "runtime", "every_variant")


class ParamsError(UserError):
    """A value of params.yaml (or of a resolved configuration) that no stage can run with; one line."""


def read_yaml(path: str | Path):
    """params.yaml or a profile, read as DVC reads it (YAML 1.2, ruamel.yaml's safe loader): ``1e-05`` is a
    number, ``010`` is ten, ``off`` is text and a duplicate key an error, so the stages train with the values
    ``dvc params diff`` and ``dvc exp run -S`` show. Returns plain dicts, lists, str, int, float, bool, None."""
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file") from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ParamsError(f"{path}{where}: {problem} (not valid YAML)") from None
    return _plain(data, f"{path}", [])


def dump_yaml(data) -> str:
    """``data`` as YAML 1.2 text that ``read_yaml`` (and DVC) read back to the same values: a string such as
    ``"1e-05"`` or ``"off"`` is quoted where YAML 1.2 would read it otherwise, which PyYAML (YAML 1.1) does not do."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style, yaml.width = None, 4096
    yaml.sort_base_mapping_type_on_output = False  # the order of params.yaml (variants, datasets) is kept
    yaml.representer.add_representer(float, _represent_float)
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _represent_float(representer, value: float):
    """``1.0e-05`` rather than ``1e-05``: a number for YAML 1.1 readers (PyYAML) too, not only for YAML 1.2."""
    text = repr(value)
    if math.isfinite(value) and "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e", 1)
    return (
        representer.represent_scalar("tag:yaml.org,2002:float", text)
        if "e" in text
        else representer.represent_float(value)
    )


def _plain(value, path: str, keys: list):
    """``value`` with every mapping a dict, every sequence a list; a date or a set (a value DVC and the JSON
    configurations cannot carry) is refused, naming its key."""
    if isinstance(value, dict):
        return {key: _plain(item, path, [*keys, key]) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, path, [*keys, i]) for i, item in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    kind = "a date" if isinstance(value, datetime.date) else f"a YAML {type(value).__name__}"
    key = ".".join(map(str, keys))
    raise ParamsError(f"{path} {key}: {value!s} reads as {kind}; quote it to make it text")


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such file; run from the repository root")
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, found {_kind(params)}")
    return params


def load_profile(path: str | Path) -> dict:
    """A profile (``profiles/*.yaml``): a mapping of sections, each a mapping; an empty file is no change."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such profile (see profiles/)")
    profile = read_yaml(path)
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise ParamsError(f"{path}: expected a mapping of params.yaml sections, found {_kind(profile)}")
    for key, value in profile.items():
        if key not in PROFILE_KEYS:
            raise ParamsError(f"{path} {key}: unknown section; valid: {', '.join(PROFILE_KEYS)}")
        if not isinstance(value, dict):
            raise ParamsError(f"{path} {key}: expected a mapping of keys, found {_kind(value)}")
        for name in ("datasets",) if key in ("data", "eval") else ():
            if name in value and not isinstance(value[name], dict):
                raise ParamsError(f"{path} {key}.{name}: expected a mapping of datasets, found {_kind(value[name])}")
    return profile


def _kind(value) -> str:
    return "nothing (null)" if value is None else f"{type(value).__name__} {value!r}"[:60]


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
    (``data.datasets``, ``data.folders``, ``eval.datasets``) replaced, since a profile names all of them.

    ``every_variant`` (model/train overrides) is merged into each variant's own overrides, winning over
    them: ``profiles/paper-smoke.yaml`` shortens the training of every paper variant this way. Variants of
    released weights (``checkpoint:``) are trained nowhere and hold the model of their file: it leaves them be.
    """
    out = deep_merge(params, {k: v for k, v in profile.items() if k not in ("variants", "every_variant")})
    if "variants" in profile:
        out["variants"] = copy.deepcopy(profile["variants"])
    if "every_variant" in profile:
        out["variants"] = {
            name: own if "checkpoint" in (own or {}) else deep_merge(own or {}, profile["every_variant"])
            for name, own in out["variants"].items()
        }
    for section, key in (("data", "datasets"), ("data", "folders"), ("eval", "datasets")):
        if key in profile.get(section, {}):
            out[section][key] = copy.deepcopy(profile[section][key])
    return out
