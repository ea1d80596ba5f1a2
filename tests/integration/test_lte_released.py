"""LTE's released format (../shared/fixtures/official-lte: EDSR-baseline-LTE weights made by the reference code,
and its renders) through the library and the ``liif`` command, and the fixture telling every rule of the
query apart: a render with any one rule broken lands far from it (lte-spec 8)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED, need

from liif.eval.render import render_image, render_reference
from liif.images import load_image
from liif.models import lte
from liif.models.base import ENSEMBLE_EPS
from liif.models.checkpoint import load_checkpoint

TOLERANCE = 1e-5
SIZES = [(144, 144), (100, 75)]  # x3 (shifted pixel centres on cell borders) and a non-integer, anisotropic one


@pytest.fixture(scope="module")
def fixture_dir():
    return need(SHARED / "fixtures" / "official-lte")


@pytest.fixture(scope="module")
def released(fixture_dir):
    model, raw = load_checkpoint(fixture_dir / "edsr-baseline-lte.pth")
    lr, _ = load_image(fixture_dir / "input_48x48.png")
    return model, raw, lr


def expected(fixture_dir, size) -> np.ndarray:
    return np.load(fixture_dir / f"edsr-baseline-lte_{size[0]}x{size[1]}.npy")


@pytest.mark.parametrize("size", SIZES)
def test_released_weights_reproduce_the_reference_renders(fixture_dir, released, size, record_property):
    model, raw, lr = released
    assert raw["format"] == "official" and raw["spec"]["name"] == "lte"
    assert raw["spec"]["args"]["hidden_dim"] == 256 and raw["spec"]["args"]["decoder_hidden"] == [256, 256, 256]
    reference = expected(fixture_dir, size)
    fast = render_image(model, lr, size, device="cpu").numpy()
    tiled = render_image(model, lr, size, device="cpu", tile=24, chunk=1000).numpy()  # 2 x 2 tiles
    literal = render_reference(model, lr, size, device="cpu", chunk=30000).numpy()
    diffs = {
        name: float(np.abs(out - reference).max())
        for name, out in [("fast", fast), ("tiled", tiled), ("literal", literal)]
    }
    record_property("max_abs_diff", diffs)
    assert fast.shape == reference.shape
    assert all(d <= TOLERANCE for d in diffs.values()), diffs


@pytest.mark.parametrize("size", SIZES)
def test_liif_upscale_renders_the_released_weights_as_the_reference(fixture_dir, tmp_path, size):
    out = tmp_path / "out.npy"
    argv = ["upscale", fixture_dir / "input_48x48.png", "-o", out, "--size", f"{size[0]}x{size[1]}"]
    argv += ["--checkpoint", fixture_dir / "edsr-baseline-lte.pth", "--device", "cpu"]
    proc = subprocess.run([sys.executable, "-m", "liif.cli", *map(str, argv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert np.abs(np.load(out) - expected(fixture_dir, size)).max() <= TOLERANCE


def no_tie_break(size):
    h, w = size
    return [(sy / h, sx / w) for sy, sx in lte.SHIFTS]


def no_area_swap(rels):
    areas = (rels[..., 0] * rels[..., 1]).abs() + 1e-9
    return areas / areas.sum(0)


def no_pi(phi):
    return torch.cat([torch.cos(phi), torch.sin(phi)], dim=-1)


def sin_before_cos(phi):
    return torch.cat([torch.sin(torch.pi * phi), torch.cos(torch.pi * phi)], dim=-1)


def no_phase(freq, rel, phase):
    return (freq.unflatten(-1, (-1, 2)) * rel.unsqueeze(-2)).sum(-1)


def unscaled_rel(coord, centres, size):
    return coord - centres


def no_skip(image, coord):
    return torch.zeros(*coord.shape[:-1], image.features.shape[1])


MUTATIONS = {  # rule of lte-spec 2.4 -> (function of liif/models/lte.py, a version that breaks only that rule)
    "tie-break offset": ("ensemble_offsets", no_tie_break),
    "diagonal area swap": ("ensemble_weights", no_area_swap),
    "pi factor": ("fourier_basis", no_pi),
    "phase term": ("phase_angles", no_phase),
    "cos/sin order": ("fourier_basis", sin_before_cos),
    "relative-coordinate scaling": ("relative_coords", unscaled_rel),
    "bilinear skip": ("bilinear_skip", no_skip),  # the fast path's; the literal one calls grid_sample itself
}


def test_the_fixture_tells_every_rule_of_the_query_apart(fixture_dir, released, monkeypatch, record_property):
    """Each broken rule moves the x3 render (which holds the tie-break's border queries) 100 times the tolerance
    away from the reference, in the renderer and, where the literal path shares the rule, in that one too."""
    model, _, lr = released
    reference = torch.from_numpy(expected(fixture_dir, (144, 144)))
    assert ENSEMBLE_EPS == 1e-6 and lte.ensemble_offsets((48, 48))[0] == (-1 / 48 + 1e-6, -1 / 48 + 1e-6)
    assert (render_image(model, lr, (144, 144), device="cpu") - reference).abs().max() <= TOLERANCE
    errors = {}
    for rule, (function, broken) in MUTATIONS.items():
        with monkeypatch.context() as m:
            m.setattr(lte, function, broken)
            renders = [render_image] + ([render_reference] if function != "bilinear_skip" else [])
            errors[rule] = [
                (render(model, lr, (144, 144), device="cpu") - reference).abs().max().item() for render in renders
            ]
    record_property("max_abs_diff", errors)
    assert all(min(e) > 100 * TOLERANCE for e in errors.values()), errors
