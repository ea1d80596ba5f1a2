"""Convolutional encoders (paper spec, section 2.1), one registry: ``ENCODERS.get(name)``.

One module per family registers its names (``edsr.py``: ``edsr-baseline`` and ``edsr``; ``rdn.py``: ``rdn``);
a new encoder is one new module of this package (see ``liif.encoders.base`` for the interface).
"""

from torch import nn

from liif.encoders.base import ENCODERS, Encoder, conv3x3, pixel_shuffle_stages
from liif.encoders.edsr import EDSR, FullEDSR
from liif.encoders.rdn import RDN, RDN_CONFIGS

__all__ = [
    "EDSR",
    "ENCODERS",
    "RDN",
    "RDN_CONFIGS",
    "Encoder",
    "FullEDSR",
    "conv3x3",
    "make_encoder",
    "official_encoder",
    "pixel_shuffle_stages",
]


def make_encoder(*, name: str, upscale: int | None = None, channels: int = 3, **args) -> nn.Module:
    """The encoder of a ``model.encoder`` section; ``upscale`` appends its up-sampler (fixed-scale models only),
    ``channels`` (the model's) is the image channels it reads and its up-sampler writes, passed where not 3."""
    model_set = ({} if upscale is None else {"upscale": upscale}) | ({} if channels == 3 else {"channels": channels})
    return ENCODERS.get(name)(**args, **model_set)


def official_encoder(spec: dict) -> tuple[dict, int | None]:
    """A reference-implementation encoder spec -> our encoder section and its up-sampling scale (or None)."""
    name, args = spec.get("name"), dict(spec.get("args", {}))
    if name not in ENCODERS:
        raise ValueError(f"unsupported encoder {name!r}")
    upscale = None if args.get("no_upsampling", False) else int(args.get("scale", 2))
    return ENCODERS.get(name).from_official(args), upscale
