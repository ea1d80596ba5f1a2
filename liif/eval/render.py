"""Render a model at any output size with memory bounded by tile and chunk sizes.

``render_image`` runs the encoder once per LR tile (once in total when the
image fits in one tile), precomputes the first decoder layer per latent, and
decodes the output pixels that the tile owns in query chunks whose results
are copied off the device as they finish. A tile's encoder input carries a
halo of the encoder's receptive radius, so tiled and one-pass renders agree.
Peak working memory depends on the tile and chunk sizes, not on the output
size; only the returned image grows with it.

A model renders the channels it was built for (``model.channels``: RGB, or one
grey channel); a grey model given an RGB image reads it by the one grey rule
(``liif.images.grey_image``) and returns it as RGB of three equal channels, so a
caller that shows RGB images (the report's figures) needs no case of its own.
"""

import math

import torch
from tqdm import tqdm

from liif.device import resolve_device
from liif.errors import UserError
from liif.images import grey_image
from liif.models import coord_axis, make_coord, nearest_index

DEFAULT_CHUNK = 4096  # queries per decoder call (x4 rows with the local ensemble); fastest on CPU
DEFAULT_TILE = 512  # LR pixels per tile side


def output_size(lr_size: tuple[int, int], *, scale=None, size=None) -> tuple[int, int]:
    """The (H, W) to render: an explicit size, or the LR size times a scale (one number or (sy, sx))."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")  # a caller's bug
    if size is not None:
        out = (int(size[0]), int(size[1]))
    else:
        sy, sx = (scale, scale) if isinstance(scale, (int, float)) else scale
        if not (sy > 0 and sx > 0 and math.isfinite(sy) and math.isfinite(sx)):
            raise RenderError(f"scale must be positive and finite, got {scale}")
        h, w = lr_size[0] * sy, lr_size[1] * sx
        if not (h < 1e9 and w < 1e9):
            raise RenderError(f"scale {scale}: the output of {h:g}x{w:g} pixels is absurdly large")
        out = (round(h), round(w))
    if out[0] < 1 or out[1] < 1:
        raise RenderError(f"output size {out[0]}x{out[1]} is empty")
    return out


def _spans(n: int, tile: int) -> list[tuple[int, int]]:
    return [(start, min(start + tile, n)) for start in range(0, n, tile)]


def _owned(owner: torch.Tensor, lo: int, hi: int) -> tuple[int, int]:
    """Output indices [i0, i1) whose (monotone) owning latent lies in [lo, hi)."""
    return int(torch.searchsorted(owner, lo)), int(torch.searchsorted(owner, hi))


class RenderError(UserError):
    """A model whose output is not a number: no image or score is made of it."""


@torch.inference_mode()
def render_image(
    model: torch.nn.Module,
    lr: torch.Tensor,
    size: tuple[int, int],
    *,
    device: str | torch.device = "auto",
    chunk: int = DEFAULT_CHUNK,
    tile: int = DEFAULT_TILE,
    progress: bool = False,
    cell: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Render ``lr`` ((C, h, w) in [0, 1]) at ``size`` = (H, W); returns (H, W, C) float32 on the CPU. C is the
    model's channels, or 3 for a grey model (see the module docstring).

    ``cell`` overrides the decoded cell size (in the [-1, 1] frame; default the model's ``render_cell``, one
    output pixel, 2/H x 2/W, for all but LTE beyond its training scales): the paper's Fig. 6 decodes one x30
    output with the cells of larger pixels.
    """
    channels = model.channels
    if lr.shape[0] != channels:
        if (channels, lr.shape[0]) != (1, 3):
            raise ValueError(f"a model of {channels} channels renders no image of {lr.shape[0]}")  # a caller's bug
        grey = render_image(
            model, grey_image(lr), size, device=device, chunk=chunk, tile=tile, progress=progress, cell=cell
        )
        return grey.expand(*grey.shape[:2], 3).contiguous()
    H, W = size
    if model.resize_only:
        return model.resize(lr, (H, W))
    device = resolve_device(device)
    model = model.to(device).eval()
    h, w = lr.shape[-2:]
    grid_scale = model.grid_scale
    gh, gw = h * grid_scale, w * grid_scale
    axis_y, axis_x = coord_axis(H), coord_axis(W)
    owner_y, owner_x = nearest_index(axis_y, gh), nearest_index(axis_x, gw)
    # A query reads latents at most one (or, for MetaSR, half an output cell) away from its owner.
    reach = 1 + math.ceil(max(gh / H, gw / W))
    halo = model.receptive_radius + math.ceil(reach / grid_scale)
    cell = torch.tensor(cell or model.render_cell((h, w), (H, W)), dtype=torch.float32, device=device)
    out = torch.empty((H, W, channels), dtype=torch.float32)
    normalised = (lr.float() - 0.5) / 0.5
    bar = tqdm(total=H * W, unit="px", unit_scale=True, disable=not progress, desc="render")
    for a0, a1 in _spans(h, tile):
        i0, i1 = _owned(owner_y, a0 * grid_scale, a1 * grid_scale)
        if i0 == i1:
            continue
        for b0, b1 in _spans(w, tile):
            j0, j1 = _owned(owner_x, b0 * grid_scale, b1 * grid_scale)
            if j0 == j1:
                continue
            r0, r1 = max(0, a0 - halo), min(h, a1 + halo)
            c0, c1 = max(0, b0 - halo), min(w, b1 + halo)
            grid = model.encode(normalised[None, :, r0:r1, c0:c1].to(device))
            grid.size, grid.offset = (gh, gw), (r0 * grid_scale, c0 * grid_scale)
            grid = model.prepare(grid)
            _decode_block(model, grid, out, axis_y, axis_x, (i0, i1), (j0, j1), cell, chunk, bar)
            del grid
    bar.close()
    if not torch.isfinite(out).all():  # clamping keeps NaN: a black or NaN image would pass for a result
        raise RenderError(
            "the model's output holds NaN or infinite values (its weights overflow: a diverged or corrupted "
            "model); nothing was written"
        )
    return out


def _decode_block(model, grid, out, axis_y, axis_x, rows, cols, cell, chunk, bar):
    """Decode out[rows, cols] in chunks of whole rows (or row segments when a row exceeds a chunk)."""
    i0, i1 = rows
    j0, j1 = cols
    device = grid.features.device
    width = j1 - j0
    rows_per_chunk = max(1, chunk // width)
    seg = min(width, chunk)
    for r in range(i0, i1, rows_per_chunk):
        r_end = min(r + rows_per_chunk, i1)
        for c in range(j0, j1, seg):
            c_end = min(c + seg, j1)
            ys = axis_y[r:r_end].to(device)
            xs = axis_x[c:c_end].to(device)
            coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(1, -1, 2)
            pred = model.query(grid, coord, cell.expand_as(coord))
            pred = (pred * 0.5 + 0.5).clamp_(0, 1)
            out[r:r_end, c:c_end] = pred.view(r_end - r, c_end - c, out.shape[-1]).cpu()
            bar.update(pred.shape[1])


@torch.inference_mode()
def render_reference(
    model: torch.nn.Module, lr: torch.Tensor, size: tuple[int, int], *, device="auto", chunk: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """The spec's procedure literally (LIIF and MetaSR): one encoder pass, then per chunk unfold,
    grid_sample the 576-channel latent per query and run the whole decoder. The baseline
    that ``render_image`` is tested and benchmarked against."""
    device = resolve_device(device)
    model = model.to(device).eval()
    H, W = size
    features = model.encode(((lr.float() - 0.5) / 0.5)[None].to(device)).features
    coord = make_coord((H, W)).to(device)[None]
    cell = torch.tensor(model.render_cell(tuple(lr.shape[-2:]), (H, W)), dtype=torch.float32, device=device)
    cell = cell.expand_as(coord)
    pieces = []
    for start in range(0, H * W, chunk):
        pred = model.query_reference(features, coord[:, start : start + chunk], cell[:, start : start + chunk])
        pieces.append((pred * 0.5 + 0.5).clamp_(0, 1)[0].cpu())
    return torch.cat(pieces).view(H, W, model.channels)
