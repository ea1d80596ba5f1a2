"""The Bicubic baseline."""

import torch

from liif.images import matlab_bicubic_tensor
from liif.models.base import MODELS, RGB, Channels, SRModel, with_channels


@MODELS.register("bicubic")
class Bicubic(SRModel):
    """The Bicubic baseline: MATLAB-style bicubic up-sampling, no parameters; of one channel (``channels=1``),
    it resizes the grey channel.

    ``liif.eval.render.render_image`` calls ``resize`` on the whole image instead of querying.
    """

    resize_only = True
    unrecorded_defaults = ("channels",)  # an RGB model's configuration is what it was before grey models
    patches = None
    trains_on_queries = False

    def __init__(self, *, channels: Channels = RGB):
        super().__init__()
        self.config, self.channels = with_channels({}, channels), channels

    def resize(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(C, h, w) in [0, 1] -> (H, W, C), MATLAB-style bicubic of each channel."""
        return matlab_bicubic_tensor(lr, size).permute(1, 2, 0).contiguous()
