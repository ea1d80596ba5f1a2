"""SSIM (Wang et al. 2004) as the SR literature reports it beside PSNR, on the same crop and channels."""

import torch
import torch.nn.functional as F

from liif.metrics import metric
from liif.protocol import Y_WEIGHTS, luma_of, shave_for


def _to_y(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(Y_WEIGHTS, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True) + 16 / 255


@metric("ssim", higher_is_better=True, digits=5, shown=4)
def ssim(
    pred: torch.Tensor, target: torch.Tensor, *, protocol: str = "none", scale: float = 1, grey: bool = False
) -> float:
    """SSIM (Gaussian window 11, sigma 1.5, peak 1) on the same channels and crop as ``psnr``; the benchmark
    protocol scores MATLAB's rgb2ycbcr luma of every RGB image, greyscale ones included, so ``grey`` changes
    nothing; a (1, H, W) grey image is its own luma."""
    pred, target = pred.double(), target.double()
    if protocol == "benchmark" and luma_of(pred.shape[0]):
        pred, target = _to_y(pred), _to_y(target)
    shave = shave_for(protocol, scale)
    if shave:
        pred, target = pred[..., shave:-shave, shave:-shave], target[..., shave:-shave, shave:-shave]
    c = pred.shape[0]
    size = min(11, *pred.shape[-2:]) // 2 * 2 + 1  # tiny images get a smaller window
    if size > min(pred.shape[-2:]):
        size -= 2
    if size < 1:
        return float("nan")
    x = torch.arange(size, dtype=pred.dtype, device=pred.device) - size // 2
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    g = g / g.sum()
    column, row = g.view(1, 1, size, 1).expand(c, 1, size, 1), g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(img):  # the 11x11 Gaussian window, applied as two 1-D passes
        return F.conv2d(F.conv2d(img.unsqueeze(0), column, groups=c), row, groups=c)[0]

    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(pred * target) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean().item()
