"""Stage download: make every dataset of ``data.datasets`` available (see liif.sources)."""

import argparse
import sys

from liif.params import load_params
from liif.sources import SourceError, fetch_datasets


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, help="folder for downloads and extracted archives")
    parser.add_argument("--trusted", required=True, help="trust-on-first-use checksums (a file tracked in git)")
    args = parser.parse_args()
    try:
        fetch_datasets(load_params()["data"]["datasets"], raw_root=args.raw, trusted=args.trusted)
    except SourceError as e:
        print(f"download: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
