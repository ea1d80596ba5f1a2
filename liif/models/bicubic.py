"""The Bicubic baseline."""

import torch

from liif.images import matlab_bicubic_tensor
from liif.models.base import MODELS, SRModel


@MODELS.register("bicubic")
class Bicubic(SRModel):
    """The Bicubic baseline: MATLAB-style bicubic up-sampling, no parameters.

    ``liif.eval.render.render_image`` calls ``resize`` on the whole image instead of querying.
    """

    resize_only = True
    patches = None
    trains_on_queries = False

    def __init__(self):
        super().__init__()
        self.config = {}

    def resize(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(3, h, w) in [0, 1] -> (H, W, 3), MATLAB-style bicubic."""
        return matlab_bicubic_tensor(lr, size).permute(1, 2, 0).contiguous()
