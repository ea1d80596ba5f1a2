"""Training samples against a literal reading of spec 3.2-3.4 and 2.5.

Test images carry their own pixel positions (red = row, green = column, blue = noise), so a ground-truth
value says which source pixel it came from: crop position, augmentation and query coordinates can all be
checked exactly, and the input is compared with PIL's bicubic of that very crop.
"""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from liif.train.patches import DownsampledPatches, PairedPatches, UniformVariedPairs

TRANSFORMS = list(itertools.product([False, True], repeat=3))  # flip height, flip width, transpose (spec 3.2)


def coded_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 (3, h, w): red = row, green = column, blue = noise."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    noise = torch.randint(0, 256, (h, w), generator=torch.Generator().manual_seed(seed))
    return torch.stack([rows, cols, noise]).to(torch.uint8)


def transform(t: torch.Tensor, flip_h: bool, flip_w: bool, transpose: bool) -> torch.Tensor:
    if flip_h:
        t = t.flip(-2)
    if flip_w:
        t = t.flip(-1)
    return t.transpose(-2, -1) if transpose else t


def pil_resize(uint8_chw: torch.Tensor, side: int) -> torch.Tensor:
    """The reference's resize_fn (spec 3.3): float -> ToPILImage (multiply by 255, truncate) -> PIL bicubic."""
    as_float = uint8_chw.float() / 255
    array = (as_float * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    resized = Image.fromarray(array).resize((side, side), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)


def queries(item: dict) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Ground-truth side from the cell, the (row, col) each query addresses, and its 8-bit RGB."""
    side = round(2 / item["cell"][0, 0].item())
    assert torch.allclose(item["cell"], torch.full_like(item["cell"], 2 / side))  # cell = [2/h, 2/w] (spec 2.3)
    index = (item["coord"] + 1) * side / 2 - 0.5  # pixel centres -1 + (2i + 1)/n
    assert torch.allclose(index, index.round(), atol=1e-4), "queries must sit on pixel centres"
    rgb = item["gt"] * 0.5 + 0.5  # normalisation (x - 0.5) / 0.5
    assert torch.allclose(rgb * 255, (rgb * 255).round(), atol=1e-4)
    return side, index.round().long(), (rgb * 255).round().to(torch.uint8)


def locate(image: torch.Tensor, side: int, ij: torch.Tensor, values: torch.Tensor):
    """The (transform, top, left) for which transform(image crop) holds ``values`` at ``ij``; None if none does."""
    grid = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"))
    for t in TRANSFORMS:
        dy, dx = transform(grid, *t)[:, ij[:, 0], ij[:, 1]]
        top, left = int(values[0, 0]) - int(dy[0]), int(values[0, 1]) - int(dx[0])
        if top < 0 or left < 0 or top + side > image.shape[1] or left + side > image.shape[2]:
            continue
        if torch.equal(image[:, top + dy, left + dx].T, values):
            return t, top, left
    return None


def test_downsampled_patches_are_the_spec_procedure():
    image = coded_image(110, 130)
    ds = DownsampledPatches([image], inp_size=16, scale_min=1, scale_max=4, augment=True, sample_q=None, repeat=60)
    seen_transforms, sides = set(), set()
    for index in range(60):
        item = ds[index]
        side, ij, values = queries(item)
        assert 16 <= side <= 64  # round(inp_size * s), s ~ U(1, 4)
        assert len({tuple(p) for p in ij.tolist()}) == side * side  # every HR pixel once
        found = locate(image, side, ij, values)
        assert found is not None, f"sample {index}: not a crop of the image under one flip/transpose"
        t, top, left = found
        crop = image[:, top : top + side, left : left + side]
        expected = transform(pil_resize(crop, 16), *t).float() / 255  # LR of the crop, same augmentation
        assert torch.allclose(item["inp"], (expected - 0.5) / 0.5, atol=1e-6)
        seen_transforms.add(t)
        sides.add(side)
    assert len(seen_transforms) == 8 and len(sides) > 20


def test_sampled_queries_are_drawn_without_replacement_from_the_same_crop():
    image = coded_image(90, 90, seed=1)
    ds = DownsampledPatches([image], inp_size=16, scale_min=2, scale_max=3, augment=True, sample_q=256, repeat=10)
    for index in range(10):
        item = ds[index]
        side, ij, values = queries(item)
        assert item["coord"].shape == (256, 2) and len({tuple(p) for p in ij.tolist()}) == 256
        assert locate(image, side, ij, values) is not None


def test_paired_patches_align_the_lr_crop_with_hr_at_y_times_s():
    s, p = 3, 12
    lr = coded_image(40, 44, seed=2)
    hr = coded_image(120, 132, seed=3)
    ds = PairedPatches([hr], [lr], scale=s, inp_size=p, augment=True, repeat=30)
    seen = set()
    for index in range(30):
        item = ds[index]
        side, ij, values = queries(item)
        assert side == p * s and item["coord"].shape == (side * side, 2)  # every HR pixel supervised
        t, top, left = locate(hr, side, ij, values)
        inp = ((item["inp"] * 0.5 + 0.5) * 255).round().to(torch.uint8)
        lr_top, lr_left = top // s, left // s
        assert (top, left) == (lr_top * s, lr_left * s)
        assert torch.equal(inp, transform(lr[:, lr_top : lr_top + p, lr_left : lr_left + p], *t))
        seen.add(t)
    assert len(seen) > 4


@pytest.mark.parametrize("gt_resize", [None, 32])
def test_uniform_varied_ground_truths_follow_spec_3_4(gt_resize):
    L, H, n = 8, 32, 5
    hr = [coded_image(H, H, seed=10 + i) for i in range(n)]
    lr = [coded_image(L, L, seed=20 + i) for i in range(n)]
    ds = UniformVariedPairs(lr, hr, lr_size=L, hr_size=H, sample_q=10**6, augment=True, gt_resize=gt_resize, repeat=4)
    flips = set()
    for index in range(len(ds)):
        i = index % n
        side_expected = round(L + (H - L) * i / (n - 1))
        expected = pil_resize(hr[i], side_expected) if side_expected != H else hr[i]
        if gt_resize:  # the up-sampling baseline: the varied GT resized back to H x H
            expected = pil_resize(expected, gt_resize)
        item = ds[index]
        side, ij, values = queries(item)
        assert side == (gt_resize or side_expected)
        grid = torch.zeros(3, side, side, dtype=torch.uint8)
        grid[:, ij[:, 0], ij[:, 1]] = values.T
        inp = ((item["inp"] * 0.5 + 0.5) * 255).round().to(torch.uint8)
        flipped = not torch.equal(grid, expected)
        assert torch.equal(grid, expected.flip(-1) if flipped else expected)  # horizontal flip only
        assert torch.equal(inp, lr[i].flip(-1) if flipped else lr[i])  # the same flip on the input
        flips.add(flipped)
    assert flips == {False, True}


def test_channel_shuffle_reorders_lr_and_hr_alike_and_is_off_by_default():
    image = coded_image(96, 96, seed=2)
    plain = DownsampledPatches([image], inp_size=16, scale_min=2, scale_max=2, augment=False, sample_q=None, repeat=40)
    shuffled = DownsampledPatches(
        [image], inp_size=16, scale_min=2, scale_max=2, augment=False, sample_q=None, repeat=40, channel_shuffle=True
    )
    orders = set()
    for index in range(40):
        a, b = plain[index], shuffled[index]  # same crop: the permutation is drawn after it
        order = [next(c for c in range(3) if torch.equal(b["gt"][:, k], a["gt"][:, c])) for k in range(3)]
        assert torch.equal(b["inp"], a["inp"][order]) and torch.equal(b["gt"], a["gt"][:, order])
        orders.add(tuple(order))
    assert len(orders) == 6  # every channel order occurs
    off = DownsampledPatches(
        [image], inp_size=16, scale_min=2, scale_max=2, augment=False, sample_q=None, repeat=40, channel_shuffle=False
    )
    assert all(torch.equal(plain[i]["gt"], off[i]["gt"]) for i in range(5))  # off is the default


def test_paired_patches_shuffle_channels_alike():
    hr = coded_image(64, 64, seed=3)
    lr = hr[:, ::2, ::2].clone()
    plain = PairedPatches([hr], [lr], scale=2, inp_size=8, augment=False, repeat=20)
    shuffled = PairedPatches([hr], [lr], scale=2, inp_size=8, augment=False, repeat=20, channel_shuffle=True)
    for index in range(20):
        a, b = plain[index], shuffled[index]
        order = [next(c for c in range(3) if torch.equal(b["inp"][k], a["inp"][c])) for k in range(3)]
        assert torch.equal(b["gt"], a["gt"][:, order])


def test_uniform_varied_pairs_shuffle_channels_alike():
    lrs = [coded_image(8, 8, seed=i) for i in range(4)]
    hrs = [coded_image(32, 32, seed=10 + i) for i in range(4)]
    common = dict(lr_size=8, hr_size=32, sample_q=64, augment=False, repeat=3)
    shuffled = UniformVariedPairs(lrs, hrs, channel_shuffle=True, **common)
    orders = set()
    for index in range(12):
        item, i = shuffled[index], index % 4
        order = [
            next(c for c in range(3) if torch.equal(item["inp"][k], lrs[i][c].float() / 255 * 2 - 1)) for k in range(3)
        ]
        side, ij, values = queries(item)  # the ground truth the queries read, in the same channel order
        assert torch.equal(values, shuffled.gt[i][order][:, ij[:, 0], ij[:, 1]].T)
        orders.add(tuple(order))
    assert len(orders) > 1
