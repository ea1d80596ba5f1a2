"""LTE (liif/models/lte.py): the fast query equals the spec's literal procedure (values, gradients, tiles), the
bilinear skip equals grid_sample, the test-time cell rule acts where the reference's test path applies it, and
the model is a configurable, checkpointed component like the others (the released weights:
tests/integration/test_lte_released.py)."""

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_ENCODER, random_image, study_params, tiny_liif

from liif.config.params import ParamsError
from liif.config.variants import check_params, resolve_variant
from liif.encoders import EDSR
from liif.eval.render import render_image, render_reference
from liif.models import LatentGrid, build_model, make_coord
from liif.models.checkpoint import CheckpointError, count_parameters, load_checkpoint, save_checkpoint
from liif.models.lte import LTE, bilinear_skip

TINY_RDN = {"name": "rdn", "G0": 8, "n_blocks": 2, "n_convs": 2, "growth": 4}


def tiny_lte(**args) -> LTE:
    torch.manual_seed(0)
    args = {"encoder": TINY_ENCODER, "hidden_dim": 16, "decoder_hidden": [16, 16], **args}
    return LTE(**args).eval()


def queries(size: tuple[int, int], extra: int = 200, seed: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres of a render at ``size``, arbitrary points and the corners, with assorted cells."""
    g = torch.Generator().manual_seed(seed)
    centres = make_coord(size)
    arbitrary = torch.rand(extra, 2, generator=g) * 2 - 1
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    coord = torch.cat([centres, arbitrary, corners])
    cell = torch.cat(
        [torch.tensor([2 / size[0], 2 / size[1]]).expand_as(centres), torch.rand(extra + 4, 2, generator=g) * 0.5]
    )
    return coord, cell


@pytest.mark.parametrize("encoder", [TINY_ENCODER, TINY_RDN], ids=["edsr-baseline", "rdn"])
def test_fast_query_equals_the_literal_procedure(encoder):
    model = tiny_lte(encoder=encoder)
    lr = torch.stack([(random_image(9, 13, seed=s) - 0.5) / 0.5 for s in (0, 1)])  # a batch of two
    coord, cell = queries((27, 39))  # x3: shifted pixel centres on cell borders, the tie-break's case
    coord, cell = coord[None].repeat(2, 1, 1), cell[None].repeat(2, 1, 1)
    with torch.no_grad():
        grid = model.encode(lr)
        fast = model.query(model.prepare(grid), coord, cell)
        literal = model.query_reference(grid.features, coord, cell)
    assert fast.shape == (2, coord.shape[1], 3)
    assert (fast - literal).abs().max() < 1e-5
    assert (fast[0] - fast[1]).abs().max() > 1e-3  # each image of the batch reads its own latents


def test_fast_query_has_the_same_gradients():
    model = tiny_lte().train()
    lr = ((random_image(8, 8) - 0.5) / 0.5)[None]
    coord = torch.rand(1, 50, 2) * 2 - 1
    cell = torch.full_like(coord, 2 / 24)
    model(lr, coord, cell).square().sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.query_reference(model.encode(lr).features, coord, cell).square().sum().backward()
    for a, p in zip(fast, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5, rtol=1e-4)


def test_bilinear_skip_is_grid_sample_with_border_padding_also_on_a_tile():
    image = torch.rand(2, 3, 7, 11)
    g = torch.Generator().manual_seed(0)
    coord = torch.cat([torch.rand(2, 300, 2, generator=g) * 2.4 - 1.2, make_coord((21, 33))[None].repeat(2, 1, 1)], 1)
    expected = F.grid_sample(image, coord.flip(-1).unsqueeze(1), padding_mode="border", align_corners=False)
    expected = expected[:, :, 0].permute(0, 2, 1)
    assert (bilinear_skip(LatentGrid(image, size=(7, 11)), coord) - expected).abs().max() < 1e-6
    # rows 2.. and columns 3.. as a tile of the whole: queries whose taps it holds read the same values
    tile = LatentGrid(image[:, :, 2:, 3:].contiguous(), size=(7, 11), offset=(2, 3))
    inside = make_coord((21, 33), flatten=False)[8:, 11:].reshape(1, -1, 2).repeat(2, 1, 1)
    whole = bilinear_skip(LatentGrid(image, size=(7, 11)), inside)
    assert torch.equal(bilinear_skip(tile, inside), whole)


@pytest.mark.parametrize("size", [(75, 61), (40, 90), (20, 13), (69, 87)])  # x3 is the last
def test_tiled_render_equals_one_pass_and_the_literal_render(size):
    model = tiny_lte()
    lr = random_image(23, 29)
    whole = render_image(model, lr, size, device="cpu", tile=1024)
    tiled = render_image(model, lr, size, device="cpu", tile=5, chunk=37)
    literal = render_reference(model, lr, size, device="cpu", chunk=500)
    assert torch.allclose(whole, tiled, atol=1e-6)
    assert (whole - literal).abs().max() < 1e-5


def test_the_bilinear_skip_makes_a_zero_decoder_render_the_bilinear_upsampling():
    """With the MLP's output layer zeroed, LTE renders exactly the input's bilinear up-sampling (lte-spec 2.4 step 8)."""
    model = tiny_lte()
    with torch.no_grad():
        model.decoder.layers[-1].weight.zero_()
        model.decoder.layers[-1].bias.zero_()
    lr = random_image(12, 10)
    out = render_image(model, lr, (30, 25), device="cpu", tile=4)
    bilinear = F.interpolate(lr[None], (30, 25), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    assert (out - bilinear).abs().max() < 1e-6


class CellSpy:
    """Records the cells a model's queries receive."""

    def __init__(self, model, method):
        self.cells = []
        original = getattr(model, method)

        def spy(grid, coord, cell):
            self.cells.append(cell.reshape(-1, 2)[0].tolist())
            return original(grid, coord, cell)

        setattr(model, method, spy)


@pytest.mark.parametrize("scale, factor", [(1, 1), (2, 1), (4, 1), (6, 1.5), (12, 3), (7.5, 7.5 / 4)])
def test_rendering_beyond_x4_decodes_with_the_cell_of_x4(scale, factor):
    """lte-spec 5.1: the reference's test and demo paths multiply the cell by max(s / 4, 1); s = H_out / h."""
    lr = random_image(8, 6)
    size = (round(8 * scale), round(6 * scale))
    expected = [2 / size[0] * factor, 2 / size[1] * factor]
    for render, method in ((render_image, "query"), (render_reference, "query_reference")):
        model = tiny_lte()
        spy = CellSpy(model, method)
        render(model, lr, size, device="cpu")
        assert spy.cells and all(c == pytest.approx(expected, rel=1e-6) for c in spy.cells), render.__name__
    liif = tiny_liif()  # LIIF's test path has no such step
    spy = CellSpy(liif, "query")
    render_image(liif, lr, size, device="cpu")
    assert spy.cells[0] == pytest.approx([2 / size[0], 2 / size[1]], rel=1e-6)


def test_the_cell_rule_follows_render_scale_max_and_an_explicit_cell_is_kept():
    lr = random_image(8, 6)
    model = tiny_lte(render_scale_max=2)
    spy = CellSpy(model, "query")
    render_image(model, lr, (24, 18), device="cpu")  # x3 beyond x2: the cell of x2
    render_image(model, lr, (24, 18), device="cpu", cell=(0.5, 0.25))  # asked for: decoded as given
    assert spy.cells[0] == pytest.approx([2 / 16, 2 / 12], rel=1e-6) and spy.cells[-1] == [0.5, 0.25]
    changed = render_image(tiny_lte(render_scale_max=2), lr, (48, 36), device="cpu")
    assert (changed - render_image(tiny_lte(), lr, (48, 36), device="cpu")).abs().max() > 1e-4


def test_parameter_counts_match_the_reference():
    """lte-spec 2.3/3: the estimators and MLP add 493,827 values; EDSR-baseline-LTE holds 1,714,267 with the
    24 mean-shift values the reference stores and never applies."""
    with torch.device("meta"):
        model = LTE(encoder={"name": "edsr-baseline"})
    added = sum(count_parameters(m) for m in (model.coef, model.freq, model.phase, model.decoder))
    assert added == 493_827
    assert count_parameters(model) + 24 == 1_714_267
    assert len(model.state_dict()) == 85 - 4  # the reference's 85 tensors less 4 mean-shift ones
    assert len([m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]) == 4
    least = LTE.least_tensors({"encoder": {"name": "edsr-baseline"}, "decoder_hidden": [256] * 3})
    assert least <= 81 and least - EDSR.least_tensors({}) == 13  # the estimators' 5 tensors, the MLP's 8


def test_lte_is_a_variant_with_its_own_keys_and_an_even_hidden_dim():
    params = study_params()
    params["variants"]["lte"] = {"role": "other", "model": {"name": "lte", "hidden_dim": 16, "decoder_hidden": [16]}}
    check_params(params)
    config = resolve_variant(params, "lte")
    assert config["model"] == {
        "name": "lte",
        "args": {
            "encoder": params["model"]["encoder"],  # the base's encoder
            "hidden_dim": 16,
            "decoder_hidden": [16],
            "render_scale_max": 4,
        },
    }
    assert type(build_model(config["model"])) is LTE
    assert config["train"]["patches"] == "downsampled" and config["train"]["sample_q"] == 256  # LIIF's recipe
    params["variants"]["lte"]["model"]["hidden_dim"] = 15
    with pytest.raises(ParamsError, match=r"variants.lte.model.hidden_dim: .*15 is odd"):
        check_params(params)
    params["variants"]["lte"]["model"] = {"name": "lte", "cell_decode": False}
    with pytest.raises(ParamsError, match=r"variants.lte.model.cell_decode"):
        check_params(params)


def test_a_grey_lte_reads_and_writes_one_channel():
    model = tiny_lte(channels=1)
    assert model.config.get("channels") == 1 and "channels" not in tiny_lte().config
    out = render_image(model, random_image(9, 7)[:1], (20, 17), device="cpu", tile=4)
    literal = render_reference(model, random_image(9, 7)[:1], (20, 17), device="cpu")
    assert out.shape == (20, 17, 1) and (out - literal).abs().max() < 1e-5


def test_checkpoint_round_trip(tmp_path):
    model = tiny_lte(encoder=TINY_RDN)
    save_checkpoint(tmp_path / "lte.pth", model=model)
    loaded, raw = load_checkpoint(tmp_path / "lte.pth")
    assert raw["spec"] == {"name": "lte", "args": model.config}
    lr = random_image(10, 9)
    assert torch.equal(
        render_image(model, lr, (31, 20), device="cpu"), render_image(loaded, lr, (31, 20), device="cpu")
    )


def official_file(path, model: LTE, **args):
    """``model`` in the reference's released format (lte-spec 3), with ``args`` overriding its model.args."""
    sd = {
        ("imnet." + k[len("decoder.") :] if k.startswith("decoder.") else k): v for k, v in model.state_dict().items()
    }
    encoder = model.config["encoder"]
    spec = {
        "encoder_spec": {"name": encoder["name"], "args": {**encoder, "no_upsampling": True}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": model.config["decoder_hidden"]}},
        "hidden_dim": model.hidden_dim,
    }
    spec["encoder_spec"]["args"].pop("name")
    torch.save({"model": {"name": "lte", "args": {**spec, **args}, "sd": sd}, "epoch": 1}, path)
    return path


def test_the_reference_format_loads_and_its_mistakes_are_one_line(tmp_path):
    model = tiny_lte()
    loaded, raw = load_checkpoint(official_file(tmp_path / "ok.pth", model))
    assert raw["format"] == "official" and raw["spec"]["args"] == model.config
    lr = random_image(10, 9)
    assert torch.equal(
        render_image(model, lr, (30, 27), device="cpu"), render_image(loaded, lr, (30, 27), device="cpu")
    )
    with pytest.raises(
        CheckpointError, match=r"lte takes encoder_spec, imnet_spec and hidden_dim, not \['cell_decode'"
    ):
        load_checkpoint(official_file(tmp_path / "flag.pth", model, cell_decode=True))
    with pytest.raises(CheckpointError, match="lte needs an imnet_spec"):
        load_checkpoint(official_file(tmp_path / "none.pth", model, imnet_spec=None))
    with pytest.raises(CheckpointError, match="weights do not match the lte architecture"):  # another width
        load_checkpoint(official_file(tmp_path / "wide.pth", model, hidden_dim=32))
