"""Stage prepare: decode and check every raw image, write the canonical layout and a manifest."""

import sys
from pathlib import Path

from liif.config import load_params
from liif.datasets import prepare_split, reset_dir, write_manifest


def main() -> int:
    data = load_params()["data"]
    for name, spec in data["datasets"].items():
        raw, out = Path(f"data/raw/{name}"), reset_dir(f"data/prepared/{name}")
        for split in ("train", "test"):
            sources = [raw / f"{image}.png" for image in spec[split]]
            prepare_split(sources, out / split, lr_scales=data["lr_scales"], desc=f"{name}/{split}")
        manifest = write_manifest(out)
        print(f"{name}: prepared -> {out} ({manifest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
