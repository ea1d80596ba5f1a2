"""Stage download: make every dataset of ``data.datasets`` available (see liif.sources)."""

import argparse
import sys

from liif.config.params import load_params
from liif.config.schema import check_sections
from liif.errors import run_stage
from liif.sources import fetch_datasets


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, help="folder for downloads and extracted archives")
    parser.add_argument("--trusted", required=True, help="trust-on-first-use checksums (a file tracked in git)")
    args = parser.parse_args()
    params = load_params()
    params = check_sections(params, sections=("data",))
    fetch_datasets(params["data"]["datasets"], raw_root=args.raw, trusted=args.trusted)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("download", main))
