"""LIIF, the local implicit image function (paper spec 2.4), with the paper's ablation switches."""

import torch
import torch.nn.functional as F

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
from liif.types import EncoderSection, Widths


@MODELS.register("liif")
class LIIF(SRModel):
    """Local implicit image function (paper spec 2.4) with the paper's ablation switches.

    The first decoder layer is split as W_z z + W_r r + W_c c + b: ``prepare``
    applies W_z to the (unfolded) latent grid once per latent, as a convolution,
    so a query gathers 256 values instead of 576 and skips 43 % of the decoder's
    multiply-adds. ``query_reference`` follows the spec's procedure literally.
    """

    unrecorded_defaults = ("channels",)  # an RGB model's configuration is what it was before grey models

    def __init__(
        self,
        *,
        encoder: EncoderSection,
        decoder_hidden: Widths = (256, 256, 256, 256),  # the MLP's hidden widths (paper: 4 x 256)
        feat_unfold: bool = True,
        local_ensemble: bool = True,
        cell_decode: bool = True,
        channels: Channels = RGB,  # 1: grey images in and out (liif.images.to_grey)
    ):
        super().__init__()
        config = dict(
            encoder=dict(encoder),
            decoder_hidden=list(decoder_hidden),
            feat_unfold=feat_unfold,
            local_ensemble=local_ensemble,
            cell_decode=cell_decode,
        )
        self.config, self.channels = with_channels(config, channels), channels
        self.encoder = make_encoder(**encoder, channels=channels)
        self.feat_unfold = feat_unfold
        self.local_ensemble = local_ensemble
        self.cell_decode = cell_decode
        self.latent_dim = self.encoder.out_dim * (9 if feat_unfold else 1)
        in_dim = self.latent_dim + 2 + (2 if cell_decode else 0)
        self.decoder = MLP(in_dim=in_dim, out_dim=channels, hidden=list(decoder_hidden))
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
        """Bilinear blending of (K, B, Q, channels) predictions: each weighted by the area opposite to it."""
        if preds.shape[0] == 1:
            return preds[0]
        areas = (rels[..., 0] * rels[..., 1]).abs() + 1e-9
        areas = areas.flip(0)  # shifts (-,-),(-,+),(+,-),(+,+): swap 0<->3 and 1<->2
        return (preds * (areas / areas.sum(0)).unsqueeze(-1)).sum(0)

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The colour (B, Q, channels) at ``coord`` (B, Q, 2) with cells ``cell`` (B, Q, 2), from a prepared
        grid."""
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

    @classmethod
    def from_official(cls, name: str, args: dict) -> dict | None:
        imnet = args.get("imnet_spec")
        if name != "liif" or imnet is None:
            return None
        return {
            "encoder": official_encoder(args["encoder_spec"])[0],
            "decoder_hidden": list(imnet["args"]["hidden_list"]),
            "feat_unfold": args.get("feat_unfold", True),
            "local_ensemble": args.get("local_ensemble", True),
            "cell_decode": args.get("cell_decode", True),
        }

    @classmethod
    def least_tensors(cls, args: dict) -> int:
        hidden = args.get("decoder_hidden")
        return super().least_tensors(args) + (2 * len(hidden) if isinstance(hidden, list | tuple) else 0)
