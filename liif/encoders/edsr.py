"""EDSR (paper spec, section 2.1): ``edsr-baseline`` (16 blocks, 64 channels) and the full ``edsr`` (32 blocks,
256 channels, residual scale 0.1). Module names follow the original EDSR so that released weights load unchanged.
"""

import torch
from torch import nn

from liif.encoders.base import ENCODERS, Encoder, conv3x3, count, default, pixel_shuffle_stages
from liif.types import ResScale, Width


class ResidualBlock(nn.Module):
    """conv-ReLU-conv with an identity skip, no batch norm (EDSR)."""

    def __init__(self, *, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


@ENCODERS.register("edsr-baseline")
class EDSR(Encoder):
    """EDSR-baseline (about 1.22 M parameters); the full EDSR is the same network with other defaults."""

    def __init__(
        self,
        *,
        n_resblocks: Width = 16,
        n_feats: Width = 64,
        res_scale: ResScale = 1.0,
        upscale: int | None = None,
        channels: int = 3,
    ):
        super().__init__()
        self.head = nn.Sequential(conv3x3(channels, n_feats))
        blocks: list[nn.Module] = [ResidualBlock(channels=n_feats, res_scale=res_scale) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, conv3x3(n_feats, n_feats))
        self.upscale = upscale
        self.out_dim = n_feats
        up_convs = 0
        if upscale is not None:
            stages: list[nn.Module] = []
            for factor in pixel_shuffle_stages(upscale):
                stages += [conv3x3(n_feats, factor * factor * n_feats), nn.PixelShuffle(factor)]
                up_convs += 1
            self.tail = nn.Sequential(nn.Sequential(*stages), conv3x3(n_feats, channels))
            self.out_dim = channels
            up_convs += 1
        # LR pixels a feature depends on in each direction: one per 3x3 conv.
        self.receptive_radius = 1 + 2 * n_resblocks + 1 + up_convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.body(x)
        if self.upscale is not None:
            x = self.tail(x)
        return x

    @classmethod
    def from_official(cls, args: dict) -> dict:
        return {"name": cls.name, **{key: args[key] for key in ("n_resblocks", "n_feats", "res_scale") if key in args}}

    @classmethod
    def least_tensors(cls, args: dict) -> int:  # two convs (weight, bias) per residual block
        return 4 * count(args, "n_resblocks", default(cls, "n_resblocks"))


@ENCODERS.register("edsr")
class FullEDSR(EDSR):
    """The full EDSR (about 43 M parameters)."""

    def __init__(
        self,
        *,
        n_resblocks: Width = 32,
        n_feats: Width = 256,
        res_scale: ResScale = 0.1,
        upscale: int | None = None,
        channels: int = 3,
    ):
        super().__init__(
            n_resblocks=n_resblocks, n_feats=n_feats, res_scale=res_scale, upscale=upscale, channels=channels
        )
