"""RDN (paper spec, section 2.1), configuration B by default. Module names follow the original RDN so that
released weights load unchanged."""

import torch
from torch import nn

from liif.encoders.base import ENCODERS, Encoder, conv3x3, count, default
from liif.types import KernelSize, Width

RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}  # (blocks D, convs per block C, growth G)


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


@ENCODERS.register("rdn")
class RDN(Encoder):
    """Residual Dense Network; defaults are configuration B (G0 64, 16 blocks of 8 convs, growth 64;
    about 21.97 M parameters)."""

    def __init__(
        self,
        *,
        G0: Width = 64,
        kernel_size: KernelSize = 3,
        n_blocks: Width = 16,
        n_convs: Width = 8,
        growth: Width = 64,
        upscale: int | None = None,
        channels: int = 3,
    ):
        super().__init__()
        self.SFENet1 = conv3x3(channels, G0, kernel_size)
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
            self.UPNet = nn.Sequential(*layers, conv3x3(growth, channels, kernel_size))
            self.out_dim = channels
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

    @classmethod
    def from_official(cls, args: dict) -> dict:
        blocks, convs, growth = RDN_CONFIGS[args.get("RDNconfig", "B")]
        out = {"name": cls.name, "G0": args.get("G0", 64), "kernel_size": args.get("RDNkSize", 3)}
        out.update(n_blocks=blocks, n_convs=convs, growth=growth)
        return out

    @classmethod
    def least_tensors(cls, args: dict) -> int:  # a conv per dense layer and the fusion conv per block
        return (
            count(args, "n_blocks", default(cls, "n_blocks"))
            * 2
            * (count(args, "n_convs", default(cls, "n_convs")) + 1)
        )
