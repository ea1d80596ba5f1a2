"""Stage configure@<variant>: resolve one variant of params.yaml into configs/<variant>.json.

Training depends on this file rather than on params.yaml, so an override of the
base model re-trains exactly the variants whose resolved configuration changes.
"""

import argparse
import json
import sys
from pathlib import Path

from liif.config import load_params, resolve_variant


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    args = parser.parse_args()
    config = resolve_variant(load_params(), args.variant)
    out = Path("configs") / f"{args.variant}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
