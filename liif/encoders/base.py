"""What every encoder shares: the registry, the 3x3 convolution and the sub-pixel factors of an up-sampler.

An encoder maps an RGB image normalised to [-1, 1] to a feature grid of the same height and width, with
``out_dim`` channels and a ``receptive_radius`` (LR pixels a feature depends on in each direction). Given
``upscale``, which only its model passes (the fixed-scale up-sampler), it appends its original sub-pixel
up-sampler and returns an RGB image ``upscale`` times larger. ``channels``, also its model's (``model.channels``),
makes it read (and, with ``upscale``, write) images of one grey channel instead of RGB; a model of 3 channels
never passes it, so an encoder of your own needs it only for grey models. Its other keyword-only constructor
arguments are its section of params.yaml (``model.encoder``), checked from their annotations.
"""

import inspect
import math

from torch import nn

from liif.registry import Registry

ENCODERS = Registry("encoder")


class Encoder(nn.Module):
    """The interface the models read; subclasses set ``out_dim`` and ``receptive_radius`` in ``__init__``."""

    from_model = ("upscale", "channels")  # constructor arguments its model passes, not params.yaml
    out_dim: int
    receptive_radius: int

    @classmethod
    def from_official(cls, args: dict) -> dict:
        """Our encoder section for the ``args`` of the reference implementation's encoder spec of this name."""
        raise NotImplementedError(f"{cls.name}: no released weights to read")

    @classmethod
    def least_tensors(cls, args: dict) -> int:
        """How many weight tensors an encoder of these ``args`` holds at least, counted without building it."""
        return 0


def default(cls, key: str):
    """The default of a constructor argument, read from the signature (where it is written once)."""
    return inspect.signature(cls).parameters[key].default


def count(args: dict, key: str, default: int) -> int:
    """``args[key]`` (or ``default``) where it is a positive integer, else 0: for ``least_tensors``."""
    value = args.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def conv3x3(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def pixel_shuffle_stages(scale: int) -> list[int]:
    """Sub-pixel factors that compose ``scale``: powers of two in steps of 2, or a single 3."""
    if scale == 3:
        return [3]
    if scale >= 2 and (scale & (scale - 1)) == 0:
        return [2] * int(math.log2(scale))
    raise ValueError(f"the sub-pixel up-sampler supports scales 2, 3, 4, 8, ...; got {scale}")
