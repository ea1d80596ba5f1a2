"""Stage prepare: decode and check every image, write the canonical layout and a manifest per dataset."""

import json
import sys

from liif.catalogue import lookup
from liif.config import load_params
from liif.datasets import celeba_split, prepare_celeba, prepare_official, prepare_split, reset_dir, write_manifest
from liif.images import ImageError, list_images
from liif.sources import dataset_root, lr_scales, split_file


def main() -> int:
    data = load_params()["data"]
    for name, spec in data["datasets"].items():
        root, out = dataset_root(name, spec), reset_dir(f"data/prepared/{name}")
        try:
            if spec.get("catalogue", name) == "celeba-hq":
                src = root / "data1024x1024"
                names = [p.name for p in list_images(src)]
                split = celeba_split(names, split_json=split_file(name, spec),
                                     val_fraction=spec.get("val_fraction", 0.2), seed=spec.get("seed", 0))  # fmt: skip
                prepare_celeba(src, out, split=split, desc=name)
                (out / "split.json").write_text(json.dumps(split, indent=2) + "\n")
            elif spec["source"] == "sample":
                for split in ("train", "test"):
                    sources = [root / f"{image}.png" for image in spec[split]]
                    prepare_split(sources, out / split, lr_scales=data["lr_scales"], desc=f"{name}/{split}")
            else:
                dataset = lookup(spec.get("catalogue", name))
                prepare_official(root, hr_dir=dataset.hr_dir, lr_dir=dataset.lr_dir, scales=lr_scales(spec, dataset),
                                 out_dir=out / spec.get("split", "test"), desc=name)  # fmt: skip
        except ImageError as e:
            print(f"prepare: {e}", file=sys.stderr)
            return 2
        manifest = write_manifest(out)
        print(f"{name}: prepared -> {out} ({manifest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
