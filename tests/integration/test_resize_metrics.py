"""The bicubic baseline reproduces the published Y-PSNR of Set5, Set14 and B100 through the evaluation (every
image of each set at x2-x4: minutes on a CPU, so not a unit test)."""

import pytest

from liif.eval.scores import evaluate_pairs
from liif.images import list_images
from liif.models import Bicubic

PUBLISHED_BICUBIC = {  # ../shared/datasets/README.md
    "Set5": (33.66, 30.39, 28.42),
    "Set14": (30.24, 27.55, 26.00),
    "B100": (29.56, 27.21, 25.96),
}


@pytest.mark.parametrize("dataset", sorted(PUBLISHED_BICUBIC))
def test_bicubic_baseline_reproduces_published_y_psnr(datasets_dir, dataset):
    root = datasets_dir / "benchmark" / dataset
    for s, published in zip((2, 3, 4), PUBLISHED_BICUBIC[dataset]):
        scores = evaluate_pairs(
            Bicubic(),
            list_images(root / "HR"),
            scale=s,
            protocol="benchmark",
            lr_dir=root / "LR_bicubic" / f"X{s}",
            grey_luma=True,
            progress=False,
        )
        mean = sum(x.psnr for x in scores) / len(scores)
        assert abs(mean - published) <= 0.02, f"{dataset} x{s}: {mean:.3f} vs {published}"
