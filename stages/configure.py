"""Stage configure@<variant>: resolve one variant's identity from params.yaml into its config file.

Training depends on this file rather than on params.yaml, so an override of the
base model re-trains exactly the variants whose resolved configuration changes.
"""

import argparse
import json
import sys
from pathlib import Path

from liif.params import load_params
from liif.variants import resolve_variant


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("--out", required=True, help="the resolved configuration, JSON")
    args = parser.parse_args()
    config = resolve_variant(load_params(), args.variant)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
