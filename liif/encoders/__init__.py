"""Convolutional encoders: EDSR(-baseline) and RDN (paper spec, section 2.1).

Both map an RGB image normalised to [-1, 1] to a feature grid of the same
height and width (``upscale=None``), or, for the fixed-scale baselines, append
their original sub-pixel up-sampler and return an RGB image ``upscale`` times
larger. Module names follow the original EDSR and RDN papers so that released
weights load without renaming.
"""

import math

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def _pixel_shuffle_stages(scale: int) -> list[int]:
    """Sub-pixel factors that compose ``scale``: powers of two in steps of 2, or a single 3."""
    if scale == 3:
        return [3]
    if scale >= 2 and (scale & (scale - 1)) == 0:
        return [2] * int(math.log2(scale))
    raise ValueError(f"the sub-pixel up-sampler supports scales 2, 3, 4, 8, ...; got {scale}")


class ResidualBlock(nn.Module):
    """conv-ReLU-conv with an identity skip, no batch norm (EDSR)."""

    def __init__(self, *, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR; the defaults are EDSR-baseline (16 blocks, 64 channels, about 1.22 M parameters)."""

    def __init__(self, *, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, upscale: int | None = None):
        super().__init__()
        self.head = nn.Sequential(conv3x3(3, n_feats))
        blocks: list[nn.Module] = [ResidualBlock(channels=n_feats, res_scale=res_scale) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, conv3x3(n_feats, n_feats))
        self.upscale = upscale
        self.out_dim = n_feats
        up_convs = 0
        if upscale is not None:
            stages: list[nn.Module] = []
            for factor in _pixel_shuffle_stages(upscale):
                stages += [conv3x3(n_feats, factor * factor * n_feats), nn.PixelShuffle(factor)]
                up_convs += 1
            self.tail = nn.Sequential(nn.Sequential(*stages), conv3x3(n_feats, 3))
            self.out_dim = 3
            up_convs += 1
        # LR pixels a feature depends on in each direction: one per 3x3 conv.
        self.receptive_radius = 1 + 2 * n_resblocks + 1 + up_convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.body(x)
        if self.upscale is not None:
            x = self.tail(x)
        return x


class DenseLayer(nn.Module):
    """One conv of a residual dense block: its output is concatenated to its input."""

    def __init__(self, *, in_channels: int, growth: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Sequential(conv3x3(in_channels, growth, kernel_size), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(x)], dim=1)


class ResidualDenseBlock(nn.Module):
    """C densely connected convs, 1x1 local feature fusion (LFF), local residual."""

    def __init__(self, *, channels: int, growth: int, n_convs: int, kernel_size: int):
        super().__init__()
        self.convs = nn.Sequential(
            *[
                DenseLayer(in_channels=channels + c * growth, growth=growth, kernel_size=kernel_size)
                for c in range(n_convs)
            ]
        )
        self.LFF = nn.Conv2d(channels + n_convs * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LFF(self.convs(x)) + x


RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}  # (blocks D, convs per block C, growth G)


class RDN(nn.Module):
    """Residual Dense Network; defaults are configuration B (about 21.97 M parameters)."""

    def __init__(
        self,
        *,
        G0: int = 64,
        kernel_size: int = 3,
        n_blocks: int = 16,
        n_convs: int = 8,
        growth: int = 64,
        upscale: int | None = None,
    ):
        super().__init__()
        self.SFENet1 = conv3x3(3, G0, kernel_size)
        self.SFENet2 = conv3x3(G0, G0, kernel_size)
        self.RDBs = nn.ModuleList(
            [
                ResidualDenseBlock(channels=G0, growth=growth, n_convs=n_convs, kernel_size=kernel_size)
                for _ in range(n_blocks)
            ]
        )
        self.GFF = nn.Sequential(nn.Conv2d(n_blocks * G0, G0, 1), conv3x3(G0, G0, kernel_size))
        self.upscale = upscale
        self.out_dim = G0
        up_convs = 0
        if upscale is not None:
            if upscale in (2, 3):
                layers = [conv3x3(G0, growth * upscale * upscale, kernel_size), nn.PixelShuffle(upscale)]
            elif upscale == 4:
                layers = [
                    conv3x3(G0, growth * 4, kernel_size),
                    nn.PixelShuffle(2),
                    conv3x3(growth, growth * 4, kernel_size),
                    nn.PixelShuffle(2),
                ]
            else:
                raise ValueError(f"RDN's up-sampler supports scales 2, 3 and 4; got {upscale}")
            self.UPNet = nn.Sequential(*layers, conv3x3(growth, 3, kernel_size))
            self.out_dim = 3
            up_convs = 3
        pad = kernel_size // 2
        self.receptive_radius = pad * (2 + n_blocks * n_convs + 1 + up_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.SFENet1(x)
        x = self.SFENet2(shallow)
        block_outputs = []
        for block in self.RDBs:
            x = block(x)
            block_outputs.append(x)
        x = self.GFF(torch.cat(block_outputs, dim=1)) + shallow
        if self.upscale is not None:
            x = self.UPNet(x)
        return x


def make_encoder(*, name: str, upscale: int | None = None, **size) -> nn.Module:
    """Build an encoder by name: ``edsr-baseline``, ``edsr`` (the full EDSR) or ``rdn``."""
    if name == "edsr-baseline":
        return EDSR(upscale=upscale, **size)
    if name == "edsr":
        return EDSR(**{"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1, **size}, upscale=upscale)
    if name == "rdn":
        return RDN(upscale=upscale, **size)
    raise ValueError(f"unknown encoder {name!r}: expected edsr-baseline, edsr or rdn")
