"""The models and encoders: parameter counts of the paper, the ablation switches, the fast queries equal to the
literal procedures (values and gradients), and every registered model and encoder building from its name."""

import pytest
import torch
from conftest import TINY_ENCODER, random_image, tiny_liif

from liif.encoders import EDSR, RDN
from liif.models import LIIF, MLP, FixedScaleSR, MetaSR, coord_axis, make_coord, nearest_index
from liif.models.checkpoint import count_parameters


def test_parameter_counts_match_the_paper():
    # spec 2.1/2.2/2.6: EDSR-baseline ~1.22 M, RDN ~21.97 M, decoder ~0.347 M, MetaSR predictor ~0.445 M
    assert round(count_parameters(EDSR()) / 1e6, 2) == 1.22
    assert round(count_parameters(RDN()) / 1e6, 2) == 21.97
    liif = LIIF(encoder={"name": "edsr-baseline"})
    assert liif.decoder.layers[0].in_features == 580
    assert round(count_parameters(liif.decoder) / 1e6, 3) == 0.347
    assert len([m for m in liif.decoder.modules() if isinstance(m, torch.nn.Linear)]) == 5
    meta = MetaSR(encoder={"name": "edsr-baseline"})
    assert round(count_parameters(meta.decoder) / 1e6, 3) == 0.445


def test_ablation_switches_change_the_decoder_input():
    assert LIIF(encoder=TINY_ENCODER, cell_decode=False).decoder.layers[0].in_features == 8 * 9 + 2
    assert LIIF(encoder=TINY_ENCODER, feat_unfold=False).decoder.layers[0].in_features == 8 + 4
    shallow = LIIF(encoder=TINY_ENCODER, decoder_hidden=[256, 256])
    assert len([m for m in shallow.decoder.modules() if isinstance(m, torch.nn.Linear)]) == 3


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_edsr_upsampler_scales(scale):
    enc = EDSR(n_resblocks=1, n_feats=8, upscale=scale)
    assert enc(torch.zeros(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rdn_upsampler_scales(scale):
    enc = RDN(G0=8, n_blocks=2, n_convs=2, growth=4, upscale=scale)
    assert enc(torch.zeros(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


def test_coordinates_are_pixel_centres_row_first():
    assert torch.allclose(coord_axis(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    grid = make_coord((2, 3))
    assert grid.shape == (6, 2)
    assert torch.allclose(grid[1], torch.tensor([-0.5, 0.0]))  # row 0, column 1


def test_nearest_index_matches_grid_sample():
    torch.manual_seed(0)
    n = 37
    values = torch.arange(n, dtype=torch.float32).view(1, 1, 1, n)
    coords = torch.rand(5000) * 2 - 1
    grid = torch.stack([coords, torch.zeros_like(coords)], -1).view(1, 1, -1, 2)
    sampled = torch.nn.functional.grid_sample(values, grid, mode="nearest", align_corners=False).view(-1)
    assert torch.equal(nearest_index(coords, n), sampled.long())


@pytest.mark.parametrize(
    "switches",
    [{}, {"cell_decode": False}, {"feat_unfold": False}, {"local_ensemble": False}, {"decoder_hidden": [16]}],
)
def test_fast_query_equals_the_literal_procedure(switches):
    hidden = switches.pop("decoder_hidden", [32, 32])
    torch.manual_seed(1)
    model = LIIF(encoder=TINY_ENCODER, decoder_hidden=hidden, **switches).eval()
    lr = (random_image(9, 13) - 0.5) / 0.5
    coord = make_coord((31, 17))[None]
    coord = torch.cat([coord, torch.rand(1, 200, 2) * 2 - 1], dim=1)  # pixel centres and arbitrary points
    cell = torch.tensor([2 / 31, 2 / 17]).expand_as(coord)
    with torch.no_grad():
        grid = model.encode(lr[None])
        fast = model.query(model.prepare(grid), coord, cell)
        literal = model.query_reference(grid.features, coord, cell)
    assert fast.shape == (1, coord.shape[1], 3)
    assert (fast - literal).abs().max() < 1e-5


def test_fast_query_has_the_same_gradients():
    model = tiny_liif().train()
    lr = ((random_image(8, 8) - 0.5) / 0.5)[None]
    coord = torch.rand(1, 50, 2) * 2 - 1
    cell = torch.full_like(coord, 2 / 24)
    model(lr, coord, cell).square().sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.query_reference(model.encoder(lr), coord, cell).square().sum().backward()
    for a, p in zip(fast, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5, rtol=1e-4)


def test_metasr_offsets_follow_the_projection():
    """At x2 on pixel centres, a query's top-left corner lies 0 or 0.5 LR pixels into its LR pixel."""
    torch.manual_seed(0)
    model = MetaSR(encoder=TINY_ENCODER, predictor_hidden=16).eval()
    seen = []
    model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    coord = make_coord((8, 6))[None]
    cell = torch.tensor([2 / 8, 2 / 6]).expand_as(coord)
    out = model(torch.zeros(1, 3, 4, 3), coord, cell)
    assert out.shape == (1, 48, 3)
    offsets = seen[0][0, :, :2]
    assert torch.equal((offsets * 1000).round().unique(), torch.tensor([0.0, 500.0]))
    assert ((offsets >= 0) & (offsets < 1)).all()
    assert torch.allclose(seen[0][0, :, 2], torch.tensor(0.5))  # 1/r = LR/HR size


@pytest.mark.parametrize("lr_size", [(9, 13), (12, 1020)])  # the second: offsets far from the origin
def test_metasr_fast_query_equals_the_literal_procedure(lr_size):
    torch.manual_seed(2)
    model = MetaSR(encoder=TINY_ENCODER, predictor_hidden=16).eval()
    lr = ((random_image(*lr_size, seed=3) - 0.5) / 0.5)[None]
    g = torch.Generator().manual_seed(4)
    pieces = []
    for scale in (1.0, 2.0, 2.7, 4.0, 11.3):
        H, W = round(lr_size[0] * scale), round(lr_size[1] * scale)
        centres = make_coord((H, W))
        border = (centres[:, 0].abs() > 1 - 2 / H) | (centres[:, 1].abs() > 1 - 2 / W)
        picked = torch.cat([centres[border], centres[torch.randperm(len(centres), generator=g)[:300]]])
        pieces.append((picked, torch.tensor([2 / H, 2 / W]).expand_as(picked)))
    arbitrary = torch.rand(200, 2, generator=g) * 2 - 1
    pieces.append((torch.cat([arbitrary, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])]), None))
    coord = torch.cat([c for c, _ in pieces])[None]
    cell = torch.cat([c if c is not None else torch.full_like(q, 2 / 50) for q, c in pieces])[None]
    with torch.no_grad():
        grid = model.encode(lr)
        fast = model.query(model.prepare(grid), coord, cell)
        literal = model.query_reference(grid.features, coord, cell)
    assert (fast - literal).abs().max() < 1e-5


def test_fixed_scale_reads_its_output_pixel_exactly():
    torch.manual_seed(0)
    model = FixedScaleSR(encoder=TINY_ENCODER, scale=2).eval()
    lr = torch.rand(1, 3, 5, 4)
    coord = make_coord((10, 8))[None]
    cell = torch.tensor([0.2, 0.25]).expand_as(coord)
    with torch.no_grad():
        direct = model.encoder(lr)[0].permute(1, 2, 0).reshape(-1, 3)
        queried = model(lr, coord, cell)[0]
    assert torch.equal(direct, queried)


def test_mlp_shape():
    mlp = MLP(in_dim=5, out_dim=3, hidden=[4, 4])
    assert mlp(torch.zeros(2, 7, 5)).shape == (2, 7, 3)


def test_each_encoder_name_builds_with_its_own_defaults():
    from liif.encoders import ENCODERS, make_encoder

    assert ENCODERS.names() == ["edsr", "edsr-baseline", "rdn"]
    with torch.device("meta"):
        full, baseline = make_encoder(name="edsr"), make_encoder(name="edsr-baseline")
    assert (len(full.body) - 1, full.out_dim, full.body[0].res_scale) == (32, 256, 0.1)
    assert (len(baseline.body) - 1, baseline.out_dim, baseline.body[0].res_scale) == (16, 64, 1.0)


def test_every_model_is_registered_and_says_how_it_is_trained():
    from liif.models import MODELS, Bicubic, build_model, model_spec

    assert MODELS.names() == ["bicubic", "fixed-scale", "liif", "lte", "metasr"]
    said = {name: (MODELS.get(name).patches, MODELS.get(name).trains_on_queries) for name in MODELS.names()}
    assert said == {
        "bicubic": (None, False),
        "fixed-scale": ("paired", False),
        "liif": ("downsampled", True),
        "lte": ("downsampled", True),
        "metasr": ("downsampled", True),
    }
    model = FixedScaleSR(encoder=TINY_ENCODER, scale=2)
    assert model_spec(model) == {"name": "fixed-scale", "args": {"encoder": TINY_ENCODER, "scale": 2}}
    assert type(build_model(model_spec(model))) is FixedScaleSR and model_spec(Bicubic())["name"] == "bicubic"
