"""Rewrite params.yaml with a profile's overrides, e.g. ``python scripts/apply_profile.py profiles/paper.yaml``.

The result is plain YAML (comments are not kept); ``git checkout params.yaml`` restores the default profile.
"""

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from liif.params import apply_profile, load_params  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python scripts/apply_profile.py PROFILE.yaml", file=sys.stderr)
        return 2
    profile_path = Path(sys.argv[1])
    if not profile_path.is_file():
        print(f"{profile_path}: no such profile (see profiles/)", file=sys.stderr)
        return 2
    profile = yaml.safe_load(profile_path.read_text()) or {}
    params = apply_profile(load_params("params.yaml"), profile)
    header = f"# params.yaml with {profile_path} applied; `git checkout params.yaml` restores the default.\n"
    Path("params.yaml").write_text(header + yaml.safe_dump(params, sort_keys=False, default_flow_style=None))
    print(f"params.yaml <- {profile_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
