"""Stage prepare: decode and check every image, write the prepared layout and a manifest per dataset."""

import argparse
import sys

from liif.images import ImageError
from liif.layout import PreparedData
from liif.params import load_params
from liif.prepare import prepare_dataset


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, help="where the download stage left the datasets")
    parser.add_argument("--out", required=True, help="the prepared data folder")
    args = parser.parse_args()
    data = load_params()["data"]
    for name, spec in data["datasets"].items():
        try:
            manifest = prepare_dataset(
                name, spec, raw_root=args.raw, prepared=PreparedData(args.out), sample_lr_scales=data["lr_scales"]
            )
        except (ImageError, ValueError, KeyError) as e:
            print(f"prepare: {e}", file=sys.stderr)
            return 2
        print(f"{name}: prepared ({manifest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
