"""The paper's evaluation protocols (spec section 4), one home for every stage and metric that needs them.

  * ``div2k``: RGB, ``scale + 6`` pixels shaved from each border;
  * ``benchmark``: luminance only (weights [65.738, 129.057, 25.064] / 256), ``scale`` pixels shaved;
  * ``none``: RGB over the full image (CelebA-HQ).

The images of a model of one grey channel (``model.channels: 1``) are scored on that channel under the same
shave; the benchmark protocol's luminance is taken of RGB images only, as a grey image is its own luma
(``luma_of``).

The official sets ship MATLAB-bicubic LR images for x2-x4 (``SHIPPED_LR_SCALES``); those scales are evaluated
on them.
The paper reports DIV2K at x2-x30 and the benchmark sets at x2-x8: without ``scales`` in
``eval.datasets.<d>``, a dataset is evaluated at its protocol's scales.
"""

import math

PROTOCOLS = ("div2k", "benchmark", "none")
PAPER_METRIC = "psnr"  # the paper's metric (liif.metrics): every verdict is on it, so every evaluation computes it
Y_WEIGHTS = (65.738 / 256, 129.057 / 256, 25.064 / 256)  # MATLAB's rgb2ycbcr luma, for the benchmark protocol

SHIPPED_LR_SCALES = (2, 3, 4)  # the MATLAB-bicubic LR sets DIV2K and the benchmarks ship
DIV2K_SCALES = (2, 3, 4, 6, 12, 18, 24, 30)  # T1, T3, T4
BENCHMARK_SCALES = (2, 3, 4, 6, 8)  # T2
PROTOCOL_SCALES = {"div2k": DIV2K_SCALES, "benchmark": BENCHMARK_SCALES}


def luma_of(channels: int) -> bool:
    """Whether the benchmark protocol converts an image of ``channels`` to luminance (RGB) or scores it as it is
    (one grey channel)."""
    if channels not in (1, 3):
        raise ValueError(f"images are scored as RGB (3 channels) or grey (1), not {channels} channels")
    return channels == 3


def shave_for(protocol: str, scale: float) -> int:
    """Pixels cropped from each border before scoring."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if protocol == "none":
        return 0
    s = int(math.ceil(scale))
    return s + 6 if protocol == "div2k" else s
