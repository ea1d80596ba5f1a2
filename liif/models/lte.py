"""LTE, the local texture estimator (Lee and Jin, CVPR 2022; docs/lte.md): LIIF's local ensemble
decoding a local Fourier basis instead of unfolded features, over a bilinear up-sampling of the input.

Each rule of the spec's query procedure (section 2.4) is one small function below, used by the fast query and the
literal one alike, so a test can swap any of them for a broken variant and see the released-format fixture move.
"""

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from liif.encoders import make_encoder, official_encoder
from liif.models.base import (
    CLAMP,
    ENSEMBLE_EPS,
    MLP,
    MODELS,
    RGB,
    Channels,
    LatentGrid,
    SRModel,
    coord_axis,
    make_coord,
    nearest_index,
    with_channels,
)
from liif.types import Check, EncoderSection, Scale, Width, Widths

SHIFTS = ((-1, -1), (-1, 1), (1, -1), (1, 1))  # the local ensemble's order; its weights swap 0<->3 and 1<->2


def even(width: int) -> int:
    """The frequency map is read in (row, column) pairs, and cos and sin each take half of the basis."""
    if width % 2:
        raise ValueError(f"{width} is odd; LTE's hidden_dim must be even (cos and sin take half each)")
    return width


EvenWidth = Annotated[Width, Check(even)]


def ensemble_offsets(size: tuple[int, int]) -> list[tuple[float, float]]:
    """Where each shift looks for its latent, relative to the query: half an LR pixel in each direction, plus
    the tie-break that sends a query lying exactly on a cell border (odd integer scales) to the larger index."""
    h, w = size
    return [(sy * (1.0 / h) + ENSEMBLE_EPS, sx * (1.0 / w) + ENSEMBLE_EPS) for sy, sx in SHIFTS]


def relative_coords(coord: torch.Tensor, centres: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The query's offset from its latent's centre, in units where one LR pixel spans 2."""
    rel = coord - centres
    return torch.stack([rel[..., 0] * size[0], rel[..., 1] * size[1]], dim=-1)


def scaled_cell(cell: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The query's cell in the same units as the relative coordinate: 2 / scale per axis."""
    return torch.stack([cell[..., 0] * size[0], cell[..., 1] * size[1]], dim=-1)


def phase_angles(freq: torch.Tensor, rel: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """phi_k = F[2k] rel_row + F[2k+1] rel_col + phase_k: (..., D) frequencies and (..., 2) offsets -> (..., D/2)."""
    pairs = freq.unflatten(-1, (-1, 2))
    return (pairs * rel.unsqueeze(-2)).sum(-1) + phase


def fourier_basis(phi: torch.Tensor) -> torch.Tensor:
    """cos(pi phi) then sin(pi phi): the D values the amplitudes scale."""
    angle = torch.pi * phi
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)


def ensemble_weights(rels: torch.Tensor) -> torch.Tensor:
    """(4, ..., 2) relative coordinates -> (4, ...) weights: each shift weighted by the area opposite to it."""
    areas = (rels[..., 0] * rels[..., 1]).abs() + 1e-9
    areas = areas.flip(0)  # SHIFTS order: 0<->3, 1<->2
    return areas / areas.sum(0)


def bilinear_taps(coord: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along one axis of n pixels: the two pixels a bilinear sample at ``coord`` reads and the second one's
    weight, as ``grid_sample(mode="bilinear", padding_mode="border", align_corners=False)``."""
    u = (((coord + 1) * n - 1) / 2).clamp(0, n - 1)
    first = u.floor()
    return first.long(), (first.long() + 1).clamp_(max=n - 1), u - first


def bilinear_skip(image: LatentGrid, coord: torch.Tensor) -> torch.Tensor:
    """The bilinear up-sampling of the normalised input at ``coord`` (B, Q, 2) -> (B, Q, C), which the decoder's
    prediction is a residual over; ``image`` is the input (or a tile of it with its place in the whole)."""
    h, w = image.size
    r0, r1, ty = bilinear_taps(coord[..., 0], h)
    c0, c1, tx = bilinear_taps(coord[..., 1], w)
    taps = image.gather(torch.stack([r0, r0, r1, r1]), torch.stack([c0, c1, c0, c1]))
    tx, ty = tx.unsqueeze(-1), ty.unsqueeze(-1)
    top = taps[0] * (1 - tx) + taps[1] * tx
    bottom = taps[2] * (1 - tx) + taps[3] * tx
    return top * (1 - ty) + bottom * ty


@dataclass
class EstimatorGrid(LatentGrid):
    """Amplitude and frequency maps (``features``: the D amplitudes, then the D frequencies) of a (tile of a)
    grid, with the normalised input the bilinear skip reads."""

    image: LatentGrid | None = None


@MODELS.register("lte")
class LTE(SRModel):
    """Local texture estimator (lte-spec 2): per latent, amplitudes A and frequencies F (3x3 convolutions of the
    encoder's features); per query and ensemble shift, s = MLP(A * [cos pi phi ; sin pi phi]) with
    phi = F . rel + P cell; the 4 predictions blended as LIIF's ensemble, plus a bilinear up-sampling of the input.

    ``encode`` keeps the normalised input beside the features (as channels after them: the reference's
    ``gen_feat`` keeps both), ``prepare`` computes A and F once per latent, and ``query`` decodes the 4 shifts of a
    chunk in one batch from channels-last tables. ``query_reference`` follows the spec step by step with
    ``grid_sample``. Rendering beyond ``render_scale_max`` decodes with the cell of that scale (lte-spec 5.1).
    """

    unrecorded_defaults = ("channels",)  # as the other models: an RGB model records no channels
    title = "LTE"

    def __init__(
        self,
        *,
        encoder: EncoderSection,
        hidden_dim: EvenWidth = 256,  # D: amplitudes and frequencies per latent (D/2 frequency pairs)
        decoder_hidden: Widths = (256, 256, 256),  # the MLP's hidden widths (reference: 3 x 256)
        render_scale_max: Scale = 4,  # rendering beyond this scale decodes with its cell (the reference's test)
        channels: Channels = RGB,  # 1: grey images in and out (liif.images.to_grey)
    ):
        super().__init__()
        config = dict(
            encoder=dict(encoder),
            hidden_dim=hidden_dim,
            decoder_hidden=list(decoder_hidden),
            render_scale_max=render_scale_max,
        )
        self.config, self.channels = with_channels(config, channels), channels
        self.encoder = make_encoder(**encoder, channels=channels)
        self.hidden_dim = hidden_dim
        self.render_scale_max = render_scale_max
        self.coef = nn.Conv2d(self.encoder.out_dim, hidden_dim, 3, padding=1)
        self.freq = nn.Conv2d(self.encoder.out_dim, hidden_dim, 3, padding=1)
        self.phase = nn.Linear(2, hidden_dim // 2, bias=False)
        self.decoder = MLP(in_dim=hidden_dim, out_dim=channels, hidden=list(decoder_hidden))
        self.receptive_radius = self.encoder.receptive_radius + 1  # the 3x3 estimators

    def render_cell(self, lr_size: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
        """The cell of an output pixel, enlarged beyond ``render_scale_max`` (scale = output over input height,
        as the reference's demo) to that of a query at ``render_scale_max``."""
        factor = max(size[0] / lr_size[0] / self.render_scale_max, 1)
        return 2 / size[0] * factor, 2 / size[1] * factor

    @classmethod
    def cell_rule(cls, args: dict) -> str | None:
        top = args.get("render_scale_max", 4)
        return (
            f"beyond x{top:g}, LTE decodes every output pixel with the cell of an x{top:g} query, as its reference "
            "test and demo do; training validation and every other model decode one output pixel"
        )

    def encode(self, lr: torch.Tensor) -> LatentGrid:
        return LatentGrid(torch.cat([self.encoder(lr), lr], dim=1), size=tuple(lr.shape[-2:]))

    def _split(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features.split([features.shape[1] - self.channels, self.channels], dim=1)

    def prepare(self, grid: LatentGrid) -> EstimatorGrid:
        latent, image = self._split(grid.features)
        maps = torch.cat([self.coef(latent), self.freq(latent)], dim=1)
        return EstimatorGrid(maps, size=grid.size, offset=grid.offset, image=LatentGrid(image, grid.size, grid.offset))

    def query(self, grid: EstimatorGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The colour (B, Q, channels) at ``coord`` (B, Q, 2) with cells ``cell`` (B, Q, 2), from a prepared grid."""
        h, w = grid.size
        offsets = torch.tensor(ensemble_offsets((h, w)), device=coord.device).view(-1, 1, 1, 2)
        shifted = (coord.unsqueeze(0) + offsets).clamp_(-CLAMP, CLAMP)
        rows, cols = nearest_index(shifted[..., 0], h), nearest_index(shifted[..., 1], w)
        centres = torch.stack([coord_axis(h).to(coord.device)[rows], coord_axis(w).to(coord.device)[cols]], -1)
        rel = relative_coords(coord.unsqueeze(0), centres, (h, w))  # (4, B, Q, 2)
        coef, freq = grid.gather(rows, cols).split(self.hidden_dim, dim=-1)
        phase = self.phase(scaled_cell(cell, (h, w)))  # the same for the 4 shifts
        pred = self.decoder(coef * fourier_basis(phase_angles(freq, rel, phase)))
        blended = (pred * ensemble_weights(rel).unsqueeze(-1)).sum(0)
        return blended + bilinear_skip(grid.image, coord)

    def query_reference(self, features: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The spec's procedure step by step, from ``encode(lr).features``: the estimators on the whole grid, per
        shift ``grid_sample`` of A, F and the latent centre, the basis and the full MLP, the ensemble, and the
        input's bilinear sample. The baseline the fast path is tested and benchmarked against."""
        latent, image = self._split(features)
        coef, freq = self.coef(latent), self.freq(latent)
        b, _, h, w = latent.shape
        centres = make_coord((h, w), flatten=False).to(features.device).permute(2, 0, 1)
        centres = centres.unsqueeze(0).expand(b, 2, h, w)
        rel_cell = scaled_cell(cell, (h, w))
        preds, rels = [], []
        for dy, dx in ensemble_offsets((h, w)):
            shifted = coord.clone()
            shifted[..., 0] += dy
            shifted[..., 1] += dx
            shifted.clamp_(-CLAMP, CLAMP)
            at = shifted.flip(-1).unsqueeze(1)  # grid_sample reads (x, y)
            q_coef, q_freq, q_centre = (
                F.grid_sample(m, at, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
                for m in (coef, freq, centres)
            )
            rel = relative_coords(coord, q_centre, (h, w))
            basis = fourier_basis(phase_angles(q_freq, rel, self.phase(rel_cell)))
            preds.append(self.decoder(q_coef * basis))
            rels.append(rel)
        weights = ensemble_weights(torch.stack(rels))
        out = sum(pred * weight.unsqueeze(-1) for pred, weight in zip(preds, weights))
        at = coord.flip(-1).unsqueeze(1)
        skip = F.grid_sample(image, at, mode="bilinear", padding_mode="border", align_corners=False)
        return out + skip[:, :, 0].permute(0, 2, 1)

    @classmethod
    def from_official(cls, name: str, args: dict) -> dict | None:
        if name != "lte":
            return None
        unknown = set(args) - {"encoder_spec", "imnet_spec", "hidden_dim"}
        if unknown:
            raise ValueError(f"lte takes encoder_spec, imnet_spec and hidden_dim, not {sorted(unknown)}")
        imnet = args.get("imnet_spec")
        if imnet is None:
            raise ValueError("lte needs an imnet_spec")
        if imnet["args"].get("out_dim", RGB) != RGB:
            raise ValueError(f"lte's released decoder writes RGB, not {imnet['args']['out_dim']} channels")
        encoder, upscale = official_encoder(args["encoder_spec"])
        if upscale is not None:
            raise ValueError("lte's encoder has no up-sampler (no_upsampling: true)")
        return {
            "encoder": encoder,
            "hidden_dim": args.get("hidden_dim", 256),
            "decoder_hidden": list(imnet["args"]["hidden_list"]),
            "render_scale_max": 4,  # the reference test script's --scale_max
        }

    @classmethod
    def least_tensors(cls, args: dict) -> int:
        hidden = args.get("decoder_hidden")
        layers = len(hidden) + 1 if isinstance(hidden, list | tuple) else 0
        return super().least_tensors(args) + 5 + 2 * layers  # coef, freq (weight, bias), phase, the MLP
