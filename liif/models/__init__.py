"""LIIF and the models it is compared with, behind one rendering interface.

Every model here maps a low-resolution image (normalised to [-1, 1]) and a set
of query coordinates with their cell sizes to RGB (also in [-1, 1]):

    grid = model.encode(lr)                 # once per image (or per tile)
    grid = model.prepare(grid)              # per-latent precomputation
    rgb = model.query(grid, coord, cell)    # any number of times, in chunks

``forward(lr, coord, cell)`` chains the three; ``liif.eval.render.render_image``
drives them in tiles and chunks. Two properties of ``SRModel`` tell the
renderer what differs: ``grid_scale`` (latents per LR pixel and axis: the
fixed-scale up-samplers decode from their output grid) and ``resize_only``
(Bicubic resizes the whole image instead of answering queries). Coordinates follow paper spec section 2.3:
pixel centres in [-1, 1], component 0 is the row, a cell is the size of an
output pixel in the same units.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from liif.config.schema import MODEL_ARGS
from liif.encoders import make_encoder
from liif.images import matlab_bicubic_tensor

ENSEMBLE_EPS = 1e-6  # breaks ties for queries that lie exactly on a cell border
CLAMP = 1 - 1e-6


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
    """What every model here shares: ``forward`` chains encode, prepare and query; ``encode`` gives the
    latent grid of the encoder's output; and the two
    properties the renderer reads (overridden by the fixed-scale up-sampler and by Bicubic)."""

    grid_scale = 1  # latents per LR pixel and axis
    resize_only = False  # True: ``resize`` the whole image instead of answering queries

    def forward(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query(self.prepare(self.encode(lr)), coord, cell)

    def encode(self, lr: torch.Tensor) -> LatentGrid:
        return LatentGrid(self.encoder(lr), size=(lr.shape[-2] * self.grid_scale, lr.shape[-1] * self.grid_scale))


class LIIF(SRModel):
    """Local implicit image function (paper spec 2.4) with the paper's ablation switches.

    The first decoder layer is split as W_z z + W_r r + W_c c + b: ``prepare``
    applies W_z to the (unfolded) latent grid once per latent, as a convolution,
    so a query gathers 256 values instead of 576 and skips 43 % of the decoder's
    multiply-adds. ``query_reference`` follows the spec's procedure literally.
    """

    def __init__(
        self,
        *,
        encoder: dict,
        decoder_hidden: list[int] = (256, 256, 256, 256),
        feat_unfold: bool = True,
        local_ensemble: bool = True,
        cell_decode: bool = True,
    ):
        super().__init__()
        self.config = dict(
            encoder=dict(encoder),
            decoder_hidden=list(decoder_hidden),
            feat_unfold=feat_unfold,
            local_ensemble=local_ensemble,
            cell_decode=cell_decode,
        )
        self.encoder = make_encoder(**encoder)
        self.feat_unfold = feat_unfold
        self.local_ensemble = local_ensemble
        self.cell_decode = cell_decode
        self.latent_dim = self.encoder.out_dim * (9 if feat_unfold else 1)
        in_dim = self.latent_dim + 2 + (2 if cell_decode else 0)
        self.decoder = MLP(in_dim=in_dim, out_dim=3, hidden=list(decoder_hidden))
        self.receptive_radius = self.encoder.receptive_radius + 2  # unfolding + ensemble neighbour

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        """Apply the latent part of the first decoder layer (and its bias) to every latent: a conv."""
        first = self.decoder.layers[0]
        w_latent = first.weight[:, : self.latent_dim]
        c = grid.features.shape[1]
        # F.unfold orders the 9C vector channel-major, matching a (out, C, 3, 3) kernel.
        kernel = w_latent.reshape(-1, c, 3, 3) if self.feat_unfold else w_latent.reshape(-1, c, 1, 1)
        projected = F.conv2d(grid.features, kernel, first.bias, padding=1 if self.feat_unfold else 0)
        return LatentGrid(projected, size=grid.size, offset=grid.offset)

    def _shifts(self) -> list[tuple[float, float, float]]:
        if self.local_ensemble:
            return [(vy, vx, ENSEMBLE_EPS) for vy in (-1, 1) for vx in (-1, 1)]
        return [(0, 0, 0.0)]

    def _neighbours(self, coord: torch.Tensor, size: tuple[int, int]):
        """Latent indices (K, B, Q) and relative coordinates (K, B, Q, 2) for the K ensemble shifts."""
        h, w = size
        shifts = torch.tensor(
            [[vy * (1.0 / h) + eps, vx * (1.0 / w) + eps] for vy, vx, eps in self._shifts()], device=coord.device
        ).view(-1, 1, 1, 2)
        shifted = (coord.unsqueeze(0) + shifts).clamp_(-CLAMP, CLAMP)
        rows, cols = nearest_index(shifted[..., 0], h), nearest_index(shifted[..., 1], w)
        centres = torch.stack([coord_axis(h).to(coord.device)[rows], coord_axis(w).to(coord.device)[cols]], -1)
        rel = coord.unsqueeze(0) - centres
        rel[..., 0] *= h
        rel[..., 1] *= w
        return rows, cols, rel

    @staticmethod
    def _blend(preds: torch.Tensor, rels: torch.Tensor) -> torch.Tensor:
        """Bilinear blending of (K, B, Q, 3) predictions: each weighted by the area opposite to it."""
        if preds.shape[0] == 1:
            return preds[0]
        areas = (rels[..., 0] * rels[..., 1]).abs() + 1e-9
        areas = areas.flip(0)  # shifts (-,-),(-,+),(+,-),(+,+): swap 0<->3 and 1<->2
        return (preds * (areas / areas.sum(0)).unsqueeze(-1)).sum(0)

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB at ``coord`` (B, Q, 2) with cells ``cell`` (B, Q, 2), from a prepared grid."""
        h, w = grid.size
        rows, cols, rel = self._neighbours(coord, (h, w))
        first = self.decoder.layers[0]
        extra_weight = first.weight[:, self.latent_dim :]  # rel (2) and cell (2) columns
        extra = rel
        if self.cell_decode:
            rel_cell = torch.stack([cell[..., 0] * h, cell[..., 1] * w], -1).expand_as(rel)
            extra = torch.cat([rel, rel_cell], dim=-1)
        hidden = grid.gather(rows, cols)  # W_z z + b, precomputed per latent
        extra, extra_weight = extra.to(hidden.dtype), extra_weight.to(hidden.dtype)  # no-ops unless autocast
        hidden.view(-1, hidden.shape[-1]).addmm_(extra.reshape(-1, extra.shape[-1]), extra_weight.T)
        for layer in self.decoder.layers[1:]:
            hidden = layer(hidden)
        return self._blend(hidden, rel)

    def query_reference(self, features: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The spec's query procedure, step by step: unfold, grid_sample, concat, full MLP.

        Slow and memory-hungry on purpose: it is the baseline that the fast path
        is checked and benchmarked against.
        """
        b, c, h, w = features.shape
        if self.feat_unfold:
            features = F.unfold(features, 3, padding=1).view(b, c * 9, h, w)
        centres = make_coord((h, w), flatten=False).to(features.device).permute(2, 0, 1)
        centres = centres.unsqueeze(0).expand(b, 2, h, w)
        preds, rels = [], []
        for vy, vx, eps in self._shifts():
            shifted = coord.clone()
            shifted[..., 0] += vy * (1.0 / h) + eps
            shifted[..., 1] += vx * (1.0 / w) + eps
            shifted.clamp_(-CLAMP, CLAMP)
            sample_at = shifted.flip(-1).unsqueeze(1)
            q_feat = F.grid_sample(features, sample_at, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            q_coord = F.grid_sample(centres, sample_at, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            rel = coord - q_coord
            rel[..., 0] *= h
            rel[..., 1] *= w
            inputs = [q_feat, rel]
            if self.cell_decode:
                rel_cell = cell.clone()
                rel_cell[..., 0] *= h
                rel_cell[..., 1] *= w
                inputs.append(rel_cell)
            preds.append(self.decoder(torch.cat(inputs, dim=-1)))
            rels.append(rel)
        if len(preds) == 1:
            return preds[0]
        areas = [(rel[..., 0] * rel[..., 1]).abs() + 1e-9 for rel in rels]
        areas[0], areas[3] = areas[3], areas[0]
        areas[1], areas[2] = areas[2], areas[1]
        total = areas[0] + areas[1] + areas[2] + areas[3]
        out = 0
        for pred, area in zip(preds, areas):
            out = out + pred * (area / total).unsqueeze(-1)
        return out


class MetaSR(SRModel):
    """Meta-SR as re-implemented by the LIIF authors (spec 2.6).

    A weight predictor maps (offset_y, offset_x, 1/r) to a (9C x 3) matrix that
    multiplies the unfolded latent of the LR pixel holding the query's top-left
    corner. No local ensemble, no cell decoding. ``query_reference`` follows the
    spec's procedure literally.
    """

    def __init__(self, *, encoder: dict, predictor_hidden: int = 256):
        super().__init__()
        self.config = dict(encoder=dict(encoder), predictor_hidden=predictor_hidden)
        self.encoder = make_encoder(**encoder)
        self.latent_dim = self.encoder.out_dim * 9
        self.decoder = MLP(in_dim=3, out_dim=self.latent_dim * 3, hidden=[predictor_hidden])
        self.receptive_radius = self.encoder.receptive_radius + 2

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        b, c, h, w = grid.features.shape
        unfolded = F.unfold(grid.features, 3, padding=1).view(b, c * 9, h, w)
        return LatentGrid(unfolded, size=grid.size, offset=grid.offset)

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = grid.size
        corner = coord - cell / 2  # top-left corner of each output pixel
        lookup = (corner + ENSEMBLE_EPS).clamp(-CLAMP, CLAMP)  # the epsilon and clamp choose the LR pixel only
        rows, cols = nearest_index(lookup[..., 0], h), nearest_index(lookup[..., 1], w)
        # offset of the (unshifted) corner from that LR pixel's top-left corner, in LR pixels
        offset_y = (corner[..., 0] - (coord_axis(h).to(coord.device)[rows] - 1.0 / h)) * (h / 2)
        offset_x = (corner[..., 1] - (coord_axis(w).to(coord.device)[cols] - 1.0 / w)) * (w / 2)
        inv_scale = cell[..., 0] * (h / 2)  # vertical cell only, as the reference does
        weights = self.decoder(torch.stack([offset_y, offset_x, inv_scale], -1))
        latents = grid.gather(rows, cols)
        weights = weights.view(*latents.shape, 3)
        return torch.einsum("bqk,bqkc->bqc", latents, weights)

    def query_reference(self, features: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Spec 2.6 step by step: unfold, grid_sample the latent and its pixel's corner at the lookup point,
        predict a (9C x 3) matrix from (offset, 1/r), multiply. The baseline ``query`` is tested against."""
        b, c, h, w = features.shape
        features = F.unfold(features, 3, padding=1).view(b, c * 9, h, w)
        corners = make_coord((h, w), flatten=False).to(features.device)  # LR pixel centres ...
        corners[..., 0] -= 1.0 / h  # ... moved to their top-left corners
        corners[..., 1] -= 1.0 / w
        corners = corners.permute(2, 0, 1).unsqueeze(0).expand(b, 2, h, w)
        corner = coord.clone()
        corner[..., 0] -= cell[..., 0] / 2
        corner[..., 1] -= cell[..., 1] / 2
        sample_at = (corner + ENSEMBLE_EPS).clamp(-CLAMP, CLAMP).flip(-1).unsqueeze(1)
        q_feat = F.grid_sample(features, sample_at, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
        q_corner = F.grid_sample(corners, sample_at, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
        offset = corner - q_corner
        offset[..., 0] *= h / 2
        offset[..., 1] *= w / 2
        inv_scale = cell[..., :1] * (h / 2)
        q = coord.shape[1]
        weights = self.decoder(torch.cat([offset, inv_scale], dim=-1)).view(b * q, c * 9, 3)
        return torch.bmm(q_feat.reshape(b * q, 1, c * 9), weights).view(b, q, 3)


class FixedScaleSR(SRModel):
    """A fixed-scale up-sampler (encoder with its sub-pixel tail, spec 2.5).

    Its output grid is read back by nearest sampling, so at its own scale every
    output pixel is exactly one pixel of the network's output.
    """

    def __init__(self, *, encoder: dict, scale: int):
        super().__init__()
        self.config = dict(encoder=dict(encoder), scale=scale)
        self.scale = self.grid_scale = scale
        self.encoder = make_encoder(**encoder, upscale=scale)
        self.receptive_radius = self.encoder.receptive_radius + 1

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        return grid

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = grid.size
        rows = nearest_index(coord[..., 0].clamp(-CLAMP, CLAMP), h)
        cols = nearest_index(coord[..., 1].clamp(-CLAMP, CLAMP), w)
        return grid.gather(rows, cols)


class Bicubic(SRModel):
    """The Bicubic baseline: MATLAB-style bicubic up-sampling, no parameters.

    ``liif.eval.render.render_image`` calls ``resize`` on the whole image instead of querying.
    """

    resize_only = True

    def __init__(self):
        super().__init__()
        self.config = {}

    def resize(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(3, h, w) in [0, 1] -> (H, W, 3), MATLAB-style bicubic."""
        return matlab_bicubic_tensor(lr, size).permute(1, 2, 0).contiguous()


MODEL_CLASSES = {"liif": LIIF, "metasr": MetaSR, "fixed-scale": FixedScaleSR, "bicubic": Bicubic}
if MODEL_CLASSES.keys() != MODEL_ARGS.keys():  # the names of params.yaml's model.name, with the keys each one reads
    raise ImportError(
        f"liif.models.MODEL_CLASSES {sorted(MODEL_CLASSES)} != liif.config.schema.MODEL_ARGS {sorted(MODEL_ARGS)}"
    )


def build_model(spec: dict) -> nn.Module:
    """Rebuild a model from ``{"name": ..., "args": {...}}`` as stored in checkpoints and params.yaml."""
    name = spec.get("name")
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[name](**spec.get("args", {}))


def model_spec(model: nn.Module) -> dict:
    name = next(key for key, cls in MODEL_CLASSES.items() if type(model) is cls)
    return {"name": name, "args": model.config}
