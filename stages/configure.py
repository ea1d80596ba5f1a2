"""Stage configure@<variant>: check params.yaml for one variant and resolve its identity into its config file.

Training depends on this file rather than on params.yaml, so an override of the
base model re-trains exactly the variants whose resolved configuration changes.
A wrong key or value stops here, in one line, before any training stage runs.
"""

import argparse
import json
import sys
from pathlib import Path

from liif.config.params import load_params
from liif.config.roles import role_of
from liif.config.variants import check_params, resolve_variant
from liif.errors import run_stage


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("--out", required=True, help="the resolved configuration, JSON")
    args = parser.parse_args()
    params = load_params()
    params = check_params(params, variants=[args.variant])
    role_of(params, args.variant)
    config = resolve_variant(params, args.variant)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("configure", main))
