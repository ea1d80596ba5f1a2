"""Stages prepare@<dataset> and prepare-folder@<dataset>: decode and check every image of one dataset, write its
prepared layout and manifest."""

import argparse
import sys

from liif.config.params import load_params
from liif.config.schema import check_sections
from liif.data.layout import PreparedData
from liif.data.prepare import prepare_datasets
from liif.errors import run_stage


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", help="a dataset of data.datasets or data.folders")
    parser.add_argument("--raw", default="data/raw", help="where the download stage left the datasets")
    parser.add_argument("--out", required=True, help="the prepared data folder")
    args = parser.parse_args()
    params = load_params()
    params = check_sections(params, sections=("data",))
    prepared = PreparedData(args.out)
    for name, manifest in prepare_datasets(params["data"], raw_root=args.raw, prepared=prepared, names=[args.dataset]):
        print(f"{name}: prepared ({manifest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("prepare", main))
