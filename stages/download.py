"""Stage download: fetch (or export) every dataset named in params.yaml ``data`` into data/raw/<dataset>."""

import sys

from liif.config import load_params
from liif.datasets import export_sample_suite, reset_dir


def main() -> int:
    data = load_params()["data"]
    for name, spec in data["datasets"].items():
        if spec["source"] != "sample":
            print(
                f"data.datasets.{name}.source: {spec['source']!r} is not supported yet; use 'sample'", file=sys.stderr
            )
            return 2
        out = reset_dir(f"data/raw/{name}")
        paths = export_sample_suite(spec["train"] + spec["test"], out)
        print(f"{name}: {len(paths)} images -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
