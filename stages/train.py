"""Stage train@<variant>: train one variant from its resolved configuration (resumes after a kill)."""

import argparse
import json
import sys
from pathlib import Path

from liif.checkpoint import CheckpointError
from liif.images import ImageError
from liif.layout import PreparedData
from liif.params import load_params, runtime_settings
from liif.train import train_variant


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, help="configs/<variant>.json")
    parser.add_argument("--data", required=True, help="the prepared data folder")
    parser.add_argument("--out", required=True, help="the variant's model folder")
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text())
    try:
        summary = train_variant(config, prepared=PreparedData(args.data), out_dir=args.out,
                                runtime=runtime_settings(load_params()))  # fmt: skip
    except (ImageError, CheckpointError, ValueError) as e:
        print(f"train: {config['variant']}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
