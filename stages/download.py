"""Stage download: make every dataset of ``data.datasets`` available (see liif.sources)."""

import argparse
import sys

from liif.params import load_params
from liif.sources import SourceError, fetch_datasets


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, help="folder for downloads and extracted archives")
    args = parser.parse_args()
    try:
        fetch_datasets(load_params()["data"]["datasets"], raw_root=args.raw)
    except SourceError as e:
        print(f"download: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
