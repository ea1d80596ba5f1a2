"""What every model shares: the registry, coordinates, latent grids, the MLP and ``SRModel``.

Every model maps a low-resolution image (normalised to [-1, 1]) and a set of query coordinates with their cell
sizes to RGB (also in [-1, 1]), or, built with ``channels=1`` (``model.channels: 1``), a grey image to grey::

    grid = model.encode(lr)                 # once per image (or per tile)
    grid = model.prepare(grid)              # per-latent precomputation
    rgb = model.query(grid, coord, cell)    # any number of times, in chunks

``forward(lr, coord, cell)`` chains the three; ``liif.eval.render.render_image`` drives them in tiles and chunks.
Coordinates follow paper spec section 2.3: pixel centres in [-1, 1], component 0 is the row, a cell is the size
of an output pixel in the same units.
"""

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from liif.encoders import ENCODERS
from liif.registry import Registry, settings

MODELS = Registry("model")
ENSEMBLE_EPS = 1e-6  # breaks ties for queries that lie exactly on a cell border
CLAMP = 1 - 1e-6
RGB = 3
Channels = Literal[1, 3]  # the image channels a model reads and writes: RGB, or one grey channel (liif.images)


def with_channels(config: dict, channels: int) -> dict:
    """A model's ``config`` with ``channels`` where it is not RGB: the configuration, checkpoint and hash of every
    RGB model stay what they were before models of one channel existed."""
    return config if channels == RGB else {**config, "channels": channels}


def make_coord(size: tuple[int, int], *, flatten: bool = True) -> torch.Tensor:
    """Pixel-centre coordinates of an H x W grid, (H*W, 2) in (row, col) order."""
    axes = [coord_axis(n) for n in size]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2) if flatten else grid


def coord_axis(n: int) -> torch.Tensor:
    """Centres of n pixels spanning [-1, 1]: -1 + (2i + 1) / n, computed as float32."""
    r = 1.0 / n
    return -1 + r + (2 * r) * torch.arange(n).float()


def nearest_index(coord: torch.Tensor, n: int) -> torch.Tensor:
    """Index of the pixel (of n) whose cell contains ``coord``.

    The same arithmetic as ``grid_sample(mode="nearest", align_corners=False)``
    (unnormalise, round half to even), so both paths select the same latents.
    """
    return torch.round((coord + 1) * (n / 2) - 0.5).long().clamp_(0, n - 1)


@dataclass
class LatentGrid:
    """A (tile of a) latent grid plus where it sits in the full image's grid.

    ``features`` is (B, C, h_tile, w_tile); ``size`` is the full grid's (h, w);
    ``offset`` is the tile's top-left latent in the full grid.
    """

    features: torch.Tensor
    size: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    _table: torch.Tensor | None = field(default=None, repr=False)

    def gather(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Features at full-grid indices (...) -> (..., C); the leading index dim of ``rows`` is free,
        the last-but-one must be the batch."""
        b, c, h, w = self.features.shape
        if self._table is None:  # channels-last copy, made once per grid rather than per chunk
            self._table = self.features.permute(0, 2, 3, 1).reshape(b * h * w, c)
        flat = (rows - self.offset[0]) * w + (cols - self.offset[1])
        if b > 1:
            flat = flat + torch.arange(b, device=flat.device).view(b, 1) * (h * w)
        return self._table.index_select(0, flat.reshape(-1)).view(*flat.shape, c)


class MLP(nn.Module):
    """Linear+ReLU layers of widths ``hidden``, then a Linear to ``out_dim`` (spec 2.2)."""

    def __init__(self, *, in_dim: int, out_dim: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden:
            layers += [nn.Linear(last, width), nn.ReLU(inplace=True)]
            last = width
        layers.append(nn.Linear(last, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SRModel(nn.Module):
    """What every model shares, and what it tells the rest of the pipeline about itself.

    Its keyword-only constructor arguments are its ``model`` section of params.yaml (an ``encoder`` argument
    annotated ``EncoderSection`` is the encoder's sub-section); ``self.config`` holds them for checkpoints.
    The class attributes and class methods below say how it is trained, rendered and read from released weights.
    """

    channels = RGB  # the image channels it reads and writes (its ``channels`` argument, where it takes one)
    # Settings recorded in a resolved configuration only where they differ from their default: the built-in models'
    # ``channels`` came after the study's configurations were fixed, and leaving it out at RGB keeps
    # configs/<v>.json and the hash of every existing variant as they were. A new model records all its settings.
    unrecorded_defaults: tuple[str, ...] = ()

    grid_scale = 1  # latents per LR pixel and axis (the renderer reads it; the fixed-scale up-sampler's is its scale)
    resize_only = False  # True: the renderer calls ``resize`` on the whole image instead of querying
    # The training patches that feed it (liif.train.patches): "downsampled" (HR patches, LR made at a random
    # scale), "paired" (LR and HR patches at one scale), or None: it learns nothing and is not trained. A
    # size-varied task (train.task) feeds every trained model its own patches, "uniform-varied".
    patches: str | None = "downsampled"
    trains_on_queries = True  # trained on train.sample_q query pixels of each patch, which must hold that many
    title = ""  # how the report names it ("LTE"); its registry name where empty

    def forward(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query(self.prepare(self.encode(lr)), coord, cell)

    @classmethod
    def image_channels(cls, args: dict) -> int:
        """The image channels a model of these arguments reads and writes, known without building it (the
        training wrappers read its images so): its ``channels`` argument where that is annotated ``Channels``
        (a model of your own may have a ``channels`` of another meaning), else RGB."""
        annotation, default = settings(cls).get("channels", (None, RGB))
        return args.get("channels", default) if annotation == Channels else cls.channels

    def encode(self, lr: torch.Tensor) -> LatentGrid:
        return LatentGrid(self.encoder(lr), size=(lr.shape[-2] * self.grid_scale, lr.shape[-1] * self.grid_scale))

    def render_cell(self, lr_size: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
        """The cell the renderer decodes an ``lr_size`` input at ``size`` with: one output pixel, unless a model's
        test protocol says otherwise (LTE's, beyond its training scales). Training never reads it."""
        return 2 / size[0], 2 / size[1]

    @classmethod
    def cell_rule(cls, args: dict) -> str | None:
        """In words, for the report: where ``render_cell`` decodes with another cell than one output pixel, for a
        model of these arguments; None where it never does."""
        return None

    @classmethod
    def adjust_recipe(cls, recipe: dict, settings: dict) -> dict:
        """Its training recipe from the merged ``train`` section, with ``patches`` already chosen; ``settings``
        are its resolved arguments. Unchanged by default."""
        return recipe

    @classmethod
    def from_official(cls, name: str, args: dict) -> dict | None:
        """Its arguments for a model of the reference implementation's format (``{name, args}`` of a released
        checkpoint), or None where that model is not this one."""
        return None

    @classmethod
    def official_state_dict(cls, state_dict: dict) -> dict:
        """A released state dict in our names: the reference calls the decoder ``imnet`` and builds mean-shift
        layers in its encoders that it never applies (spec 2.1)."""
        out = {}
        for key, value in state_dict.items():
            if key.startswith(("encoder.sub_mean.", "encoder.add_mean.")):
                continue
            out["decoder." + key[len("imnet.") :] if key.startswith("imnet.") else key] = value
        return out

    @classmethod
    def least_tensors(cls, args: dict) -> int:
        """How many weight tensors a model of these ``args`` holds at least, counted without building it: a file
        holding fewer cannot match, and a forged count (300,000 residual blocks) would take minutes to build."""
        encoder = args.get("encoder")
        if isinstance(encoder, dict) and encoder.get("name") in ENCODERS:
            return ENCODERS.get(encoder["name"]).least_tensors(encoder)
        return 0
