"""The bicubic resizers and the metrics: MATLAB downscaling regenerates the shipped LR sets, PSNR and SSIM follow
the evaluation protocols, and each metric registers itself."""

import math

import numpy as np
import pytest
import torch
from conftest import random_image
from PIL import Image

from liif.eval.scores import downsample_for_test
from liif.images import matlab_bicubic, pil_bicubic
from liif.metrics import METRICS, shave_for
from liif.metrics.psnr import psnr
from liif.metrics.ssim import ssim


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_matlab_downscale_regenerates_shipped_lr_bit_for_bit(datasets_dir, dataset):
    root = datasets_dir / "benchmark" / dataset
    for hr_path in sorted((root / "HR").glob("*.png")):
        hr = _rgb(hr_path)
        for s in (2, 3, 4):
            h, w = hr.shape[0] // s * s, hr.shape[1] // s * s
            lr = matlab_bicubic(hr[:h, :w], scale=1 / s)
            shipped = _rgb(root / "LR_bicubic" / f"X{s}" / f"{hr_path.stem}x{s}.png")
            assert np.array_equal(lr, shipped), f"{hr_path.name} x{s}"


def test_matlab_resize_properties():
    flat = np.full((12, 9, 3), 77, np.uint8)
    assert np.array_equal(matlab_bicubic(flat, scale=0.5), np.full((6, 5, 3), 77, np.uint8))
    assert matlab_bicubic(flat, size=(30, 7)).shape == (30, 7, 3)
    ramp = np.tile(np.arange(0, 240, 10, dtype=np.uint8)[None, :, None], (4, 1, 3))
    up = matlab_bicubic(ramp, scale=2).astype(int)
    assert (np.diff(up[0, 4:-4, 0]) >= 0).all()  # a ramp stays monotone in the interior
    with pytest.raises(TypeError):
        matlab_bicubic(flat.astype(np.float32), scale=2)


def test_pil_bicubic_truncates_like_to_pil_image():
    img = torch.full((3, 8, 8), 0.4999)  # 127.47 -> 127 by truncation
    assert torch.all(pil_bicubic(img, (4, 4)) == 127 / 255)


def test_downsample_for_test_crops_to_a_multiple_of_the_scale():
    lr, hr = downsample_for_test(random_image(50, 47), 6)
    assert lr.shape == (3, 8, 7) and hr.shape == (3, 48, 42)


def test_psnr_protocols():
    target = torch.zeros(3, 40, 40)
    pred = target + 0.1
    assert psnr(pred, target) == pytest.approx(20.0)
    y = (65.738 + 129.057 + 25.064) / 256 * 0.1
    assert psnr(pred, target, protocol="benchmark", scale=2) == pytest.approx(-20 * math.log10(y))
    # only the border: a div2k x2 shave (8 px) hides errors in the outer 8 pixels
    pred = target.clone()
    pred[:, :8] = 1
    assert math.isinf(psnr(pred, target, protocol="div2k", scale=2))
    assert not math.isinf(psnr(pred, target, protocol="benchmark", scale=2))
    assert shave_for("div2k", 4) == 10 and shave_for("benchmark", 4) == 4 and shave_for("none", 4) == 0
    with pytest.raises(ValueError):
        shave_for("set5", 2)


@pytest.mark.parametrize(
    "protocol,scale,shave", [("none", 1, 0), ("div2k", 2, 8), ("benchmark", 3, 3), ("benchmark", 4, 4)]
)
def test_ssim_matches_scikit_image_on_the_protocol_crop_and_channels(protocol, scale, shave):
    """SSIM as the SR literature computes it (Wang et al. 2004): Gaussian window 11, sigma 1.5, population
    covariances, K1 0.01, K2 0.03, peak 1, mean over the valid window positions; benchmark on MATLAB's
    rgb2ycbcr luma (offset 16/255), div2k on RGB; both after the PSNR shave."""
    from skimage.metrics import structural_similarity

    target = random_image(47, 52, seed=1)
    pred = (target + 0.08 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    x, y = (a.double().numpy() for a in (pred, target))
    if protocol == "benchmark":
        luma = np.array([65.738, 129.057, 25.064]).reshape(3, 1, 1) / 256
        x, y = ((a * luma).sum(0, keepdims=True) + 16 / 255 for a in (x, y))
    if shave:
        x, y = x[:, shave:-shave, shave:-shave], y[:, shave:-shave, shave:-shave]
    expected = structural_similarity(
        x, y, channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert 0.3 < expected < 0.95  # far from both ends: a wrong constant or window shows
    assert ssim(pred, target, protocol=protocol, scale=scale) == pytest.approx(expected, abs=1e-9)
    assert ssim(target, target, protocol=protocol, scale=scale) == pytest.approx(1.0, abs=1e-12)


def test_metrics_register_themselves_with_what_the_report_needs():
    """Each module of liif/metrics registers its metric; the registry is the list eval.metrics is checked against."""
    from liif.registry import UnknownName

    assert {"psnr", "ssim"} <= set(METRICS.names())
    assert METRICS.get("psnr") is psnr and METRICS.get("ssim") is ssim
    assert (psnr.name, psnr.higher_is_better, psnr.unit, psnr.digits) == ("psnr", True, "dB", 4)
    assert (ssim.name, ssim.higher_is_better, ssim.digits) == ("ssim", True, 5)
    with pytest.raises(UnknownName, match="'ssmi' is not a metric; did you mean ssim"):
        METRICS.get("ssmi")


def test_the_protocols_are_spelt_once():
    """The schema's protocols are liif.protocol's, so a new protocol is one edit."""
    import typing

    from liif.config.schema import EvalDataset
    from liif.protocol import PROTOCOLS

    assert typing.get_args(EvalDataset.model_fields["protocol"].annotation) == PROTOCOLS
