"""Rewrite params.yaml with profiles' overrides, applied in order.

    python scripts/apply_profile.py profiles/paper.yaml
    python scripts/apply_profile.py profiles/paper.yaml profiles/paper-smoke.yaml

The result is plain YAML (comments are not kept); ``git checkout params.yaml`` restores the default profile.
"""

import sys
from pathlib import Path

import yaml

from liif.params import apply_profile, load_params
from liif.schema import ParamsError, check_params


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python scripts/apply_profile.py PROFILE.yaml [PROFILE.yaml ...]", file=sys.stderr)
        return 2
    params = load_params("params.yaml")
    for name in sys.argv[1:]:
        path = Path(name)
        if not path.is_file():
            print(f"{path}: no such profile (see profiles/)", file=sys.stderr)
            return 2
        params = apply_profile(params, yaml.safe_load(path.read_text()) or {})
    try:
        check_params(params)
    except ParamsError as e:
        print(f"{' + '.join(sys.argv[1:])}: {e}; params.yaml is unchanged", file=sys.stderr)
        return 2
    names = " + ".join(sys.argv[1:])
    header = f"# params.yaml with {names} applied; `git checkout params.yaml` restores the default.\n"
    Path("params.yaml").write_text(header + yaml.safe_dump(params, sort_keys=False, default_flow_style=None))
    print(f"params.yaml <- {names}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
