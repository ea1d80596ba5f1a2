"""Rewrite params.yaml with profiles' overrides, applied in order.

    python scripts/apply_profile.py profiles/paper.yaml
    python scripts/apply_profile.py profiles/paper.yaml profiles/paper-smoke.yaml

The result is plain YAML (comments are not kept); ``git checkout params.yaml`` restores the default profile.

Profiles apply to the default params.yaml only. Each later profile of one call patches the ones before it
(``paper-smoke.yaml`` shortens ``paper.yaml``'s training): what it does not set, the earlier profile keeps, and
the script lists those keys (``kept from profiles/paper.yaml: train.dataset=div2k, ...``).
Applying a profile over a params.yaml that already has profiles applied is refused, since the earlier one's
keys would silently survive (a dataset, a learning rate, a caveat): restore params.yaml first, or name all the
profiles in one call. The first line of the written params.yaml records which profiles it holds.

A mistake (a missing or broken profile, a value the schema refuses, a disk that fills while writing) is one
line on stderr and exit code 2, and leaves params.yaml as it was: it is replaced in one step (``atomic_write``).
"""

import sys
from pathlib import Path

from liif.config.params import ParamsError, apply_profile, dump_yaml, load_params, load_profile
from liif.config.variants import check_params
from liif.files import atomic_write

PARAMS = Path("params.yaml")
HEADER = "# params.yaml with "  # the first line of a params.yaml this script wrote


def applied_profiles(path: Path) -> str | None:
    """The profiles named by the header line of a params.yaml this script wrote, else None."""
    with open(path) as f:
        first = f.readline()
    return first.removeprefix(HEADER).split(" applied", 1)[0] if first.startswith(HEADER) else None


WHOLE = {("variants",), ("data", "datasets"), ("eval", "datasets")}  # replaced whole by a profile that sets them


def _leaves(profile: dict, prefix: tuple = ()) -> dict[tuple, object]:
    """A profile's keys as paths (``("train", "lr")``) -> value; the lists of variants and datasets are one key."""
    out = {}
    for key, value in profile.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value and path not in WHOLE:
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def kept(profiles: list[dict]) -> list[str]:
    """The keys an earlier profile of one call sets that no later one sets: they survive into params.yaml."""
    out = []
    for i, earlier in enumerate(profiles[:-1]):
        later = [set(_leaves(p)) for p in profiles[i + 1 :]]
        for path, value in _leaves(earlier).items():
            prefixes = {path[:n] for n in range(1, len(path) + 1)}
            if not any(prefixes & keys or any(k[: len(path)] == path for k in keys) for keys in later):
                shown = value if isinstance(value, bool | int | float) else str(value)[:40]
                out.append(f"{'.'.join(map(str, path))}={shown}")
    return out


def apply(names: list[str]) -> dict:
    """params.yaml with the profiles applied and checked; raises ParamsError (one line)."""
    params = load_params(PARAMS)
    earlier = applied_profiles(PARAMS)
    if earlier:
        raise ParamsError(
            f"params.yaml already has {earlier} applied: `git checkout params.yaml` first, or name every profile "
            f"in one call (python scripts/apply_profile.py {earlier.replace(' + ', ' ')} {' '.join(names)})"
        )
    for name in names:
        params = apply_profile(params, load_profile(name))
    try:
        check_params(params)
    except ParamsError as e:
        raise ParamsError(f"{' + '.join(names)}: {e}") from None
    return params


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python scripts/apply_profile.py PROFILE.yaml [PROFILE.yaml ...]", file=sys.stderr)
        return 2
    names = sys.argv[1:]
    try:
        params = apply(names)
        header = f"{HEADER}{' + '.join(names)} applied; `git checkout params.yaml` restores the default.\n"
        text = header + dump_yaml(params)
        with atomic_write(PARAMS) as f:
            f.write(text.encode())
    except (ParamsError, FileNotFoundError) as e:
        print(f"{e}; params.yaml is unchanged", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"params.yaml: could not write it ({e.strerror or e}); params.yaml is unchanged", file=sys.stderr)
        return 2
    if len(names) > 1:
        survive = kept([load_profile(name) for name in names])
        print(f"kept from {' + '.join(names[:-1])}: {', '.join(survive) or 'nothing'}", file=sys.stderr)
    later = f" ({' + '.join(names[1:])} patching {names[0]}: what they do not set, {names[0]} keeps)"
    print(f"params.yaml <- {' + '.join(names)}{later if len(names) > 1 else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
