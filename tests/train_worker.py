"""Helper for the training tests: train a tiny LIIF into a folder (run as a subprocess so it can be killed)."""

import json
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from conftest import tiny_sets  # noqa: E402

from liif.train.loop import fit  # noqa: E402

out_dir, config_path = sys.argv[1], sys.argv[2]
config = json.loads(open(config_path).read())
g = torch.Generator().manual_seed(5)
images = [torch.randint(0, 256, (3, 100, 110), generator=g, dtype=torch.uint8) for _ in range(3)]
smooth = [torch.nn.functional.avg_pool2d(im.float()[None], 5, 1, 2)[0].round().to(torch.uint8) for im in images]
fit(config, *tiny_sets(config, smooth, val_images=smooth[:1]), out_dir, device="cpu")
