"""The fixed-scale up-sampler: an encoder with its own sub-pixel tail (paper spec 2.5)."""

from typing import Annotated

import torch

from liif.encoders import make_encoder, official_encoder, pixel_shuffle_stages
from liif.models.base import CLAMP, MODELS, RGB, Channels, LatentGrid, SRModel, nearest_index, with_channels
from liif.models.liif import LIIF
from liif.types import Check, EncoderSection, Scale


def sub_pixel_scale(scale: int) -> int:
    """A scale the sub-pixel up-sampler composes: 2, 3, 4, 8, 16, ..."""
    try:
        pixel_shuffle_stages(scale)
    except ValueError:
        raise ValueError(f"{scale} is not a scale of the sub-pixel up-sampler: 2, 3, 4, 8, 16, ...") from None
    return scale


SubPixelScale = Annotated[Scale, Check(sub_pixel_scale)]


@MODELS.register("fixed-scale")
class FixedScaleSR(SRModel):
    """A fixed-scale up-sampler (encoder with its sub-pixel tail, spec 2.5).

    Its output grid is read back by nearest sampling, so at its own scale every
    output pixel is exactly one pixel of the network's output. It trains on paired patches at its own scale
    (every HR pixel supervised, no queries) and, in a size-varied task, on ground truths resized to H x H.
    """

    patches = "paired"
    unrecorded_defaults = ("channels",)  # an RGB model's configuration is what it was before grey models
    trains_on_queries = False

    def __init__(
        self,
        *,
        encoder: EncoderSection,
        scale: SubPixelScale,
        channels: Channels = RGB,  # 1: grey images in and out (liif.images.to_grey)
    ):
        super().__init__()
        self.config, self.channels = with_channels(dict(encoder=dict(encoder), scale=scale), channels), channels
        self.scale = self.grid_scale = scale
        self.encoder = make_encoder(**encoder, upscale=scale, channels=channels)
        self.receptive_radius = self.encoder.receptive_radius + 1

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        return grid

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = grid.size
        rows = nearest_index(coord[..., 0].clamp(-CLAMP, CLAMP), h)
        cols = nearest_index(coord[..., 1].clamp(-CLAMP, CLAMP), w)
        return grid.gather(rows, cols)

    @classmethod
    def adjust_recipe(cls, recipe: dict, settings: dict) -> dict:
        if recipe["patches"] == "uniform-varied":  # spec 3.4: its fixed output size, H x H
            return {**recipe, "gt_resize": int(recipe["task"][1])}
        return {**recipe, "scale_min": settings["scale"], "scale_max": settings["scale"]}  # spec 2.5

    @classmethod
    def from_official(cls, name: str, args: dict) -> dict | None:
        if name != LIIF.name or args.get("imnet_spec") is not None:  # released as a LIIF without a decoder
            return None
        encoder, upscale = official_encoder(args["encoder_spec"])
        if upscale is None:
            raise ValueError("a decoder-less model needs an encoder with an up-sampler")
        return {"encoder": encoder, "scale": upscale}
