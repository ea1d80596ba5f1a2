"""The released checkpoints (../shared fixtures, full-size models) reproduce the official reference outputs with
the fast and the literal renderer, and a render that skips a design step lands far from them."""

import numpy as np
import pytest
import torch

from liif.eval.render import render_image, render_reference
from liif.images import load_image
from liif.models.checkpoint import load_checkpoint


@pytest.mark.parametrize("name", ["edsr-baseline-liif", "trained-liif", "metasr"])
@pytest.mark.parametrize("size", [(144, 144), (100, 75)])
def test_released_checkpoints_match_reference_outputs(fixtures_dir, name, size):
    model, _ = load_checkpoint(fixtures_dir / f"{name}.pth")
    lr, _ = load_image(fixtures_dir / "input_48x48.png")
    expected = np.load(fixtures_dir / f"{name}_{size[0]}x{size[1]}.npy")
    fast = render_image(model, lr, size, device="cpu").numpy()
    literal = render_reference(model, lr, size, device="cpu").numpy()
    assert fast.shape == expected.shape
    assert np.abs(fast - expected).max() <= 1e-5
    assert np.abs(literal - expected).max() <= 1e-5


def test_the_trained_fixture_tells_a_missing_design_step_apart(fixtures_dir):
    """The 1e-5 agreement above means something only if a render that skips a step of spec 2.4 lands far
    outside it: the same weights with the local ensemble switched off, or decoded with the x1 cell."""
    model, _ = load_checkpoint(fixtures_dir / "trained-liif.pth")
    lr, _ = load_image(fixtures_dir / "input_48x48.png")
    expected = torch.from_numpy(np.load(fixtures_dir / "trained-liif_144x144.npy"))
    assert expected.std() > 0.05  # a real picture, not a flat one that any model comes close to
    assert (render_image(model, lr, (144, 144), device="cpu") - expected).abs().max() <= 1e-5
    wrong_cell = render_image(model, lr, (144, 144), device="cpu", cell=(2 / 48, 2 / 48))
    assert (wrong_cell - expected).abs().max() > 0.01
    model.local_ensemble = False  # what a LIIF(-e) does with these weights
    for render in (render_image, render_reference):
        assert (render(model, lr, (144, 144), device="cpu") - expected).abs().max() > 0.1, render.__name__
