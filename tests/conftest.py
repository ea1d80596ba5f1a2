"""Shared test helpers. Tests that read ../shared skip cleanly when it is absent."""

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "official-liif"
DATASETS = SHARED / "datasets"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (tests that read ../shared skip without it)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return need(FIXTURES)


@pytest.fixture
def datasets_dir() -> Path:
    return need(DATASETS)


TINY_ENCODER = {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": 8}


def tiny_liif(**switches):
    from liif.models import LIIF

    torch.manual_seed(0)
    return LIIF(encoder=TINY_ENCODER, decoder_hidden=[32, 32], **switches).eval()


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth-plus-texture image in [0, 1] holding 8-bit values, like a real photo."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(
        torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=g), (h, w), mode="bilinear"
    )
    img = (0.8 * base[0] + 0.2 * torch.rand(3, h, w, generator=g)).clamp(0, 1)
    return torch.round(img * 255) / 255
