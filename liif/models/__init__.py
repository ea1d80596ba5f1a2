"""The models, one registry: ``MODELS.get(name)``; a model is rebuilt from its spec ``{"name", "args"}``.

One module per model registers its class (``liif.py``, ``metasr.py``, ``fixed_scale.py``, ``bicubic.py``); a new
model is one new module of this package: a subclass of ``liif.models.base.SRModel`` decorated with
``@MODELS.register(<name>)`` (docs/extending.md). The shared pieces (coordinates, ``LatentGrid``, ``MLP``) are in
``base.py``; ``checkpoint.py`` reads and writes checkpoints.
"""

from torch import nn

from liif.models.base import MLP, MODELS, LatentGrid, SRModel, coord_axis, make_coord, nearest_index
from liif.models.bicubic import Bicubic
from liif.models.fixed_scale import FixedScaleSR
from liif.models.liif import LIIF
from liif.models.metasr import MetaSR

__all__ = [
    "LIIF",
    "MLP",
    "MODELS",
    "Bicubic",
    "FixedScaleSR",
    "LatentGrid",
    "MetaSR",
    "SRModel",
    "build_model",
    "coord_axis",
    "make_coord",
    "model_spec",
    "nearest_index",
]


def build_model(spec: dict) -> nn.Module:
    """Rebuild a model from ``{"name": ..., "args": {...}}`` as stored in checkpoints and configs/<v>.json."""
    name = spec.get("name")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS.names())}")
    return MODELS.get(name)(**spec.get("args", {}))


def model_spec(model: nn.Module) -> dict:
    """The spec ``build_model`` rebuilds ``model`` from."""
    return {"name": type(model).name, "args": model.config}
