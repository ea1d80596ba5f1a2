"""Stage train@<variant>: train one variant from configs/<variant>.json into models/<variant>/."""

import argparse
import json
import sys
from pathlib import Path

import torch

from liif.config import load_params
from liif.data import load_images
from liif.evaluate import list_images


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    args = parser.parse_args()
    params = load_params()
    config = json.loads((Path("configs") / f"{args.variant}.json").read_text())
    torch.set_num_threads(params["train"].get("threads") or torch.get_num_threads())

    from liif.train import train_variant

    root = Path("data/prepared") / config["train"]["dataset"]
    data = {}
    task = config["train"].get("task")
    if task:  # size-varied study: L x L inputs, H x H ground truths (prepared/<dataset>/<split>/<size>/)
        lr_size, hr_size = task
        for split, key in (("train", "train"), ("test", "val")):
            data[f"{key}_lr"] = load_images(list_images(root / split / str(lr_size)), desc=f"{split} {lr_size}")
            data[f"{key}_hr"] = load_images(list_images(root / split / str(hr_size)), desc=f"{split} {hr_size}")
    elif config["model"]["name"] != "bicubic":
        data["train_hr"] = load_images(list_images(root / "train" / "HR"), desc="train images")
        val_root = Path("data/prepared") / (config["train"].get("val_dataset") or config["train"]["dataset"])
        data["val_hr"] = load_images(list_images(val_root / "test" / "HR"), desc="val images")
        if config["model"]["name"] == "fixed-scale":
            s = config["model"]["args"]["scale"]
            data["train_lr"] = load_images(list_images(root / "train" / "LR_bicubic" / f"X{s}"), desc="train LR")
            data["val_lr"] = load_images(list_images(val_root / "test" / "LR_bicubic" / f"X{s}"), desc="val LR")
    summary = train_variant(config, data, Path("models") / args.variant, tracking=params["tracking"])
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
