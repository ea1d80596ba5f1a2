"""Meta-SR as re-implemented by the LIIF authors (paper spec 2.6), the arbitrary-scale baseline."""

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
from liif.types import EncoderSection, Width


@MODELS.register("metasr")
class MetaSR(SRModel):
    """Meta-SR as re-implemented by the LIIF authors (spec 2.6).

    A weight predictor maps (offset_y, offset_x, 1/r) to a (9C x channels) matrix that
    multiplies the unfolded latent of the LR pixel holding the query's top-left
    corner. No local ensemble, no cell decoding. ``query_reference`` follows the
    spec's procedure literally.
    """

    unrecorded_defaults = ("channels",)  # an RGB model's configuration is what it was before grey models

    def __init__(
        self,
        *,
        encoder: EncoderSection,
        predictor_hidden: Width = 256,  # the weight predictor's width
        channels: Channels = RGB,  # 1: grey images in and out (liif.images.to_grey)
    ):
        super().__init__()
        config = dict(encoder=dict(encoder), predictor_hidden=predictor_hidden)
        self.config, self.channels = with_channels(config, channels), channels
        self.encoder = make_encoder(**encoder, channels=channels)
        self.latent_dim = self.encoder.out_dim * 9
        self.decoder = MLP(in_dim=3, out_dim=self.latent_dim * channels, hidden=[predictor_hidden])
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
        weights = weights.view(*latents.shape, self.channels)
        return torch.einsum("bqk,bqkc->bqc", latents, weights)

    def query_reference(self, features: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Spec 2.6 step by step: unfold, grid_sample the latent and its pixel's corner at the lookup point,
        predict a (9C x channels) matrix from (offset, 1/r), multiply. The baseline ``query`` is tested against."""
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
        weights = self.decoder(torch.cat([offset, inv_scale], dim=-1)).view(b * q, c * 9, self.channels)
        return torch.bmm(q_feat.reshape(b * q, 1, c * 9), weights).view(b, q, self.channels)

    @classmethod
    def from_official(cls, name: str, args: dict) -> dict | None:
        if name != "metasr":
            return None
        hidden = args.get("imnet_spec", {}).get("args", {}).get("hidden_list", [256])
        return {"encoder": official_encoder(args["encoder_spec"])[0], "predictor_hidden": hidden[0]}
