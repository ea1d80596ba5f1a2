"""The inference renderer: tiled and fast renders equal the single-pass literal one, outputs are mapped back to
[0, 1], and figure crops land on detail (the released checkpoints: tests/integration/test_render.py)."""

import pytest
import torch
from conftest import TINY_ENCODER, random_image, tiny_liif

from liif.device import resolve_device
from liif.errors import UserError
from liif.eval.render import output_size, render_image, render_reference
from liif.images import matlab_bicubic
from liif.models import LIIF, Bicubic, FixedScaleSR, MetaSR


@pytest.mark.parametrize(
    "model",
    [
        tiny_liif(),
        tiny_liif(local_ensemble=False, feat_unfold=False),
        MetaSR(encoder=TINY_ENCODER, predictor_hidden=16),
        FixedScaleSR(encoder=TINY_ENCODER, scale=2),
        LIIF(encoder={"name": "rdn", "G0": 8, "n_blocks": 2, "n_convs": 2, "growth": 4}, decoder_hidden=[16]),
    ],
    ids=["liif", "liif-u-e", "metasr", "fixed-x2", "rdn-liif"],
)
@pytest.mark.parametrize("size", [(75, 61), (40, 90), (20, 13)])
def test_tiled_render_equals_one_pass(model, size):
    lr = random_image(23, 29)
    whole = render_image(model, lr, size, device="cpu", tile=1024)
    tiled = render_image(model, lr, size, device="cpu", tile=5, chunk=37)
    assert torch.allclose(whole, tiled, atol=1e-6)


@pytest.mark.parametrize("kind", ["liif", "metasr"])
def test_fast_render_matches_literal_render_at_odd_scales(kind):
    torch.manual_seed(0)
    model = tiny_liif() if kind == "liif" else MetaSR(encoder=TINY_ENCODER, predictor_hidden=16).eval()
    lr = random_image(17, 11)
    for size in [(17, 11), (60, 23), (171, 110)]:  # x1, anisotropic, non-integer
        fast = render_image(model, lr, size, device="cpu", chunk=500, tile=6)  # tiled: border latents of tiles
        literal = render_reference(model, lr, size, device="cpu", chunk=500)
        assert (fast - literal).abs().max() < 1e-5


def test_bicubic_renders_through_the_same_interface():
    lr = random_image(12, 10)
    out = render_image(Bicubic(), lr, (24, 20))
    expected = matlab_bicubic(torch.round(lr * 255).byte().permute(1, 2, 0).numpy(), scale=2)
    assert torch.equal(torch.round(out * 255).byte(), torch.from_numpy(expected))


@pytest.mark.parametrize("render", [render_image, render_reference])
def test_render_maps_predictions_back_to_0_1_and_clamps_them(render):
    """A decoder whose every output is its bias b: each pixel must be clamp(b * 0.5 + 0.5, 0, 1) (spec 4)."""
    model = tiny_liif()
    last = model.decoder.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-3.0, 0.2, 2.5]))  # below, inside and above the range
    out = render(model, random_image(8, 8), (30, 20), device="auto")
    assert out.shape == (30, 20, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.equal(out, torch.tensor([0.0, 0.6, 1.0]).expand(30, 20, 3))


def test_output_size_and_device_arguments():
    assert output_size((48, 64), scale=3.5) == (168, 224)
    assert output_size((48, 64), scale=(2, 3)) == (96, 192)
    assert output_size((48, 64), size=(100, 75)) == (100, 75)
    for bad in (0, -1, float("inf")):  # the user's scale: one line from the command
        with pytest.raises(UserError, match="scale must be positive and finite"):
            output_size((48, 64), scale=bad)
    with pytest.raises(ValueError, match="exactly one"):  # both given: the calling code's bug
        output_size((48, 64), scale=2, size=(96, 128))
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UserError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA"):
            resolve_device("cuda")


def test_cell_override_changes_only_what_cell_decoding_reads():
    lr = random_image(12, 12)
    liif, no_cell = tiny_liif(), tiny_liif(cell_decode=False)
    default = render_image(liif, lr, (60, 60))
    assert torch.equal(default, render_image(liif, lr, (60, 60), cell=(2 / 60, 2 / 60)))
    assert not torch.allclose(default, render_image(liif, lr, (60, 60), cell=(2 / 12, 2 / 12)))
    assert torch.equal(render_image(no_cell, lr, (60, 60)), render_image(no_cell, lr, (60, 60), cell=(2 / 12, 2 / 12)))


def test_figure_crops_go_where_the_detail_is():
    from liif.study.figures import detailed_window

    image = torch.full((3, 200, 300), 0.5)
    image[:, 120:170, 30:80] = random_image(50, 50, seed=3)  # the only texture
    y, x = detailed_window(image, 48)
    assert 100 <= y <= 125 and 10 <= x <= 35
    assert detailed_window(image[:, :20, :20], 48) == (0, 0)  # a window larger than the image fits it
