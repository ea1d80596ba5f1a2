"""Models of one grey channel (``model.channels: 1``): the one rule that reads any image as grey, grey models of
every kind (forward, render, checkpoint), training samples, metrics and evaluation on one channel, the
``liif`` command with a grey checkpoint, and the RGB models' identities (weights, configurations, outputs), which
the option must leave exactly as they were."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL_SECTION, study_params, tiny_config, write_tree
from PIL import Image

from liif.config.params import ParamsError
from liif.config.variants import check_params, config_hash, resolve_variant
from liif.eval.render import render_image, render_reference
from liif.eval.scores import downsample_for_test, evaluate_pairs
from liif.images import GREY_RULE, decode_image, grey_image, load_image, matlab_bicubic_tensor, to_grey
from liif.metrics.psnr import psnr
from liif.metrics.ssim import ssim
from liif.models import Bicubic, build_model
from liif.models.checkpoint import load_checkpoint, save_checkpoint
from liif.protocol import Y_WEIGHTS, luma_of
from liif.sources.sample import export_sample_suite

TINY = {"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8}
TINY_RDN = {"name": "rdn", "n_blocks": 1, "n_convs": 2, "G0": 8, "growth": 8}
GREY_SPECS = {
    "liif": {"name": "liif", "args": {"encoder": TINY, "decoder_hidden": [16, 16], "channels": 1}},
    "liif-rdn": {"name": "liif", "args": {"encoder": TINY_RDN, "decoder_hidden": [16], "channels": 1}},
    "metasr": {"name": "metasr", "args": {"encoder": TINY, "predictor_hidden": 16, "channels": 1}},
    "fixed-x2": {"name": "fixed-scale", "args": {"encoder": TINY, "scale": 2, "channels": 1}},
    "fixed-x3-rdn": {"name": "fixed-scale", "args": {"encoder": TINY_RDN, "scale": 3, "channels": 1}},
    "bicubic": {"name": "bicubic", "args": {"channels": 1}},
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photographs of the sample suite: camera (greyscale) and astronaut (colour), 96 px crops as 8-bit
    arrays, and the files: camera as a greyscale (L) PNG and as RGB, astronaut as RGB."""
    d = tmp_path_factory.mktemp("grey")
    camera, astronaut = (Image.open(p) for p in export_sample_suite(["camera", "astronaut"], d / "suite"))
    grey = np.asarray(camera.convert("L"))[200:296, 200:296]
    colour = np.asarray(astronaut.convert("RGB"))[60:156, 180:276]
    Image.fromarray(grey).save(d / "camera.png")
    Image.fromarray(np.dstack([grey] * 3)).save(d / "camera-rgb.png")
    Image.fromarray(colour).save(d / "astronaut.png")
    return d, grey, colour


def test_the_grey_rule_keeps_equal_channels_and_takes_pillows_luma_of_colour(photos):
    d, grey, colour = photos
    kept, reduced = to_grey(np.dstack([grey] * 3))
    assert not reduced and np.array_equal(kept, grey)
    luma, reduced = to_grey(colour)
    assert reduced and np.array_equal(luma, np.asarray(Image.fromarray(colour).convert("L")))
    r, g, b = (colour[..., i].astype(np.int64) for i in range(3))
    assert np.array_equal(luma, (19595 * r + 38470 * g + 7471 * b + 32768) >> 16)  # BT.601, 16-bit fixed point
    every_grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)  # Pillow keeps them, too
    assert np.array_equal(np.asarray(Image.fromarray(every_grey).convert("L"))[:, 0], np.arange(256))
    assert torch.equal(
        grey_image(torch.from_numpy(colour.copy()).permute(2, 0, 1) / 255)[0] * 255, torch.from_numpy(luma).float()
    )


def test_a_grey_read_of_any_file_is_the_rule_and_says_when_colour_was_reduced(photos, tmp_path):
    d, grey, colour = photos
    for name in ("camera.png", "camera-rgb.png"):  # greyscale, stored as L or as RGB: its grey, no notice
        pixels, notice = decode_image(d / name, channels=1)
        assert pixels.shape == (*grey.shape, 1) and np.array_equal(pixels[..., 0], grey) and notice is None
    pixels, notice = decode_image(d / "astronaut.png", channels=1)
    assert np.array_equal(pixels[..., 0], to_grey(colour)[0])
    assert "reduced its colour to one grey channel" in notice and GREY_RULE in notice
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    pixels, notice = decode_image(tmp_path / "deep.png", channels=1)
    assert np.array_equal(pixels[..., 0], grey)
    assert notice == f"{tmp_path}/deep.png: converted I;16 image to 8-bit grey: round(v / 257) of each 16-bit sample v"
    tensor, _ = load_image(d / "astronaut.png", channels=1)
    assert tensor.shape == (1, 96, 96)
    # RGB reads say what they said before grey models existed
    assert decode_image(d / "camera.png")[1] == f"{d}/camera.png: converted L image to 8-bit RGB"
    assert decode_image(d / "astronaut.png")[1] is None
    with pytest.raises(ValueError, match="not 2 channels"):
        decode_image(d / "camera.png", channels=2)


@pytest.mark.parametrize("name", list(GREY_SPECS))
def test_a_grey_model_renders_one_channel_and_survives_its_checkpoint(name, photos, tmp_path):
    _, grey, _ = photos
    torch.manual_seed(0)
    model = build_model(GREY_SPECS[name]).eval()
    assert model.channels == 1 and model.config["channels"] == 1
    first = next(iter(model.state_dict().values()), None)
    if first is not None:  # the encoder's input convolution reads one channel
        assert first.shape[1] == 1
    lr = torch.from_numpy(grey[:24, :20].copy()).unsqueeze(0).float() / 255
    out = render_image(model, lr, (53, 47), device="cpu")
    assert out.shape == (53, 47, 1) and 0 <= out.min() and out.max() <= 1
    if name.startswith(("liif", "metasr")):
        assert (render_reference(model, lr, (53, 47), device="cpu") - out).abs().max() <= 1e-5
        coord, cell = torch.rand(2, 30, 2) * 2 - 1, torch.full((2, 30, 2), 0.1)
        with torch.no_grad():
            assert model(lr.expand(2, 1, -1, -1), coord, cell).shape == (2, 30, 1)  # the training step's shape
    # the same model given the photograph as RGB renders its grey, as three equal channels
    as_rgb = render_image(model, lr.expand(3, -1, -1), (53, 47), device="cpu")
    assert as_rgb.shape == (53, 47, 3) and all(torch.equal(as_rgb[..., c], out[..., 0]) for c in range(3))
    save_checkpoint(tmp_path / "grey.pth", model=model)
    loaded, raw = load_checkpoint(tmp_path / "grey.pth")
    assert raw["model"]["args"]["channels"] == 1 and loaded.channels == 1
    assert torch.equal(render_image(loaded, lr, (53, 47), device="cpu"), out)


def test_grey_bicubic_resizes_the_one_channel_as_rgb_bicubic_resizes_each(photos):
    _, grey, colour = photos
    lr = torch.from_numpy(colour[:30, :25].copy()).permute(2, 0, 1).float() / 255
    rgb = render_image(Bicubic(), lr, (75, 62))
    for c in range(3):
        alone = render_image(Bicubic(channels=1), lr[c : c + 1], (75, 62))
        assert torch.equal(alone[..., 0], rgb[..., c])
    assert torch.equal(matlab_bicubic_tensor(lr[:1], (75, 62))[0], rgb[..., 0])


def _layout(spec: dict) -> str:
    with torch.device("meta"):
        model = build_model(spec)
    return hashlib.sha256(json.dumps([(k, list(v.shape)) for k, v in model.state_dict().items()]).encode()).hexdigest()[
        :16
    ]


def test_rgb_models_keep_their_weights_configurations_and_outputs():
    """Pinned before models of one channel existed: the state dict layout of the paper-size models, the config
    hashes of the default study's kinds of variant, and a seeded forward of each model. Any change here changes
    the default study's numbers or retrains it."""
    layouts = {
        "dcbc8307cf14f80e": {"name": "liif", "args": {"encoder": {"name": "edsr-baseline"}}},
        "789807fc0c2016de": {"name": "liif", "args": {"encoder": {"name": "rdn"}}},
        "9441b4d858f2105a": {"name": "metasr", "args": {"encoder": {"name": "edsr-baseline"}}},
        "ad27ae4bac00f5ab": {"name": "fixed-scale", "args": {"encoder": {"name": "edsr-baseline"}, "scale": 2}},
        "2374f5d8ce3cd90a": {"name": "fixed-scale", "args": {"encoder": {"name": "rdn"}, "scale": 3}},
        "cc48599a0f8dd30c": {"name": "fixed-scale", "args": {"encoder": {"name": "edsr"}, "scale": 4}},
    }
    assert {_layout(spec): spec for spec in layouts.values()} == layouts
    params = {
        "model": {
            "name": "liif",
            "encoder": {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": 32},
            "decoder_hidden": [64, 64, 64, 64],
            "feat_unfold": True,
            "local_ensemble": True,
            "cell_decode": True,
        },
        "train": {
            **{k: v for k, v in tiny_config()["train"].items() if k != "patches"},
            **{"dataset": "sample", "val_split": "val", "epochs": 300, "batch_size": 8, "repeat": 8, "inp_size": 48},
            **{"sample_q": 256, "channel_shuffle": True, "lr": 1e-3, "milestones": [180, 255], "gamma": 0.2},
            **{"val_images": 10, "amp": "fp32"},
        },
        "variants": {
            "liif": {},
            "metasr": {"model": {"name": "metasr", "predictor_hidden": 64}},
            "upsample-x2": {"model": {"name": "fixed-scale", "scale": 2}},
            "bicubic": {"model": {"name": "bicubic"}},
        },
    }
    hashes = {v: config_hash(resolve_variant(params, v)) for v in params["variants"]}
    assert hashes == {
        "liif": "e37905698a8f3c47",
        "metasr": "c95ad05c54646960",
        "upsample-x2": "f9aaef371b8013e6",
        "bicubic": "8e3c2d7d6581fd8e",
    }
    for variant in params["variants"]:  # channels 3 written out is the same configuration; channels 1 another
        for channels, same in ((3, True), (1, False)):
            changed = json.loads(json.dumps(params))
            section = changed["variants"][variant].setdefault("model", {}) if variant != "liif" else changed["model"]
            section["channels"] = channels
            resolved = resolve_variant(changed, variant)
            assert (config_hash(resolved) == hashes[variant]) == same
            assert resolved["model"]["args"].get("channels") == (None if same else 1)
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(2, 3, 6, 7, generator=g) * 2 - 1
    coord, cell = torch.rand(2, 20, 2, generator=g) * 2 - 1, torch.full((2, 20, 2), 0.1)
    pinned = {
        "liif": ({"decoder_hidden": [16, 16]}, (-11.429706, 11.429706)),
        "metasr": ({"predictor_hidden": 16}, (-5.268482, 53.432909)),
        "fixed-scale": ({"scale": 2}, (-7.051485, 12.625358)),
    }
    for name, (args, (total, absolute)) in pinned.items():
        torch.manual_seed(0)
        with torch.no_grad():
            out = build_model({"name": name, "args": {"encoder": TINY, **args}})(lr, coord, cell).double()
        assert out.sum().item() == pytest.approx(total, abs=1e-5) and out.abs().sum().item() == pytest.approx(
            absolute, abs=1e-5
        ), name


def test_psnr_and_ssim_score_the_one_channel_under_each_protocols_shave(photos):
    _, grey, _ = photos
    hr = torch.from_numpy(grey.copy()).unsqueeze(0).double() / 255
    lr, hr = downsample_for_test(hr.float(), 3)
    pred = render_image(Bicubic(channels=1), lr, tuple(hr.shape[-2:])).permute(2, 0, 1)
    rgb_pred, rgb_hr = pred.expand(3, -1, -1), hr.expand(3, -1, -1)
    for protocol in ("div2k", "none"):  # one channel scores as its RGB of three equal channels
        assert psnr(pred, hr, protocol=protocol, scale=3) == pytest.approx(
            psnr(rgb_pred, rgb_hr, protocol=protocol, scale=3), abs=1e-9
        )
        assert ssim(pred, hr, protocol=protocol, scale=3) == pytest.approx(
            ssim(rgb_pred, rgb_hr, protocol=protocol, scale=3), abs=1e-9
        )
    # benchmark: a grey image is its own luma, not the studio-swing Y of its RGB (which scales it by sum(weights))
    shaved = (pred[:, 3:-3, 3:-3].double() - hr[:, 3:-3, 3:-3].double()).pow(2).mean().item()
    assert psnr(pred, hr, protocol="benchmark", scale=3) == pytest.approx(-10 * math.log10(shaved), abs=1e-9)
    assert psnr(rgb_pred, rgb_hr, protocol="benchmark", scale=3) == pytest.approx(
        psnr(pred, hr, protocol="benchmark", scale=3) - 20 * math.log10(sum(Y_WEIGHTS)), abs=1e-9
    )
    assert ssim(pred, hr, protocol="benchmark", scale=3) == pytest.approx(
        ssim(pred[:, 3:-3, 3:-3], hr[:, 3:-3, 3:-3], protocol="none"), abs=1e-12
    )
    assert luma_of(3) and not luma_of(1)
    with pytest.raises(ValueError, match="not 2 channels"):
        psnr(pred.expand(2, -1, -1), hr.expand(2, -1, -1), protocol="benchmark", scale=3)


def test_a_grey_model_is_evaluated_on_grey_images(photos, tmp_path):
    """On a greyscale photograph, grey and RGB Bicubic score alike; on a colour one, the grey model scores its
    render of the photograph's grey against that grey."""
    d, grey, colour = photos
    for name in ("camera.png", "astronaut.png"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    paths = [tmp_path / "camera.png", tmp_path / "astronaut.png"]
    grey_scores = evaluate_pairs(Bicubic(channels=1), paths, scale=2, protocol="div2k", device="cpu", progress=False)
    rgb_scores = evaluate_pairs(Bicubic(), paths[:1], scale=2, protocol="div2k", device="cpu", progress=False)
    assert grey_scores[0].psnr == pytest.approx(rgb_scores[0].psnr, abs=1e-9)
    hr = torch.from_numpy(to_grey(colour)[0]).unsqueeze(0).float() / 255
    lr, hr = downsample_for_test(hr, 2)
    expected = psnr(render_image(Bicubic(channels=1), lr, (96, 96)).permute(2, 0, 1), hr, protocol="div2k", scale=2)
    assert grey_scores[1].psnr == pytest.approx(expected, abs=1e-12)


def test_grey_training_samples_hold_one_channel_and_ignore_channel_shuffle(tmp_path):
    from liif.data.layout import PreparedData
    from liif.train.patches import load_images, make_training_sets

    prepared = PreparedData(tmp_path)
    write_tree(prepared, "photos", {"train": 2, "test": 1})  # colour images, read through the grey rule
    params = {
        "model": {**TINY_MODEL_SECTION, "channels": 1},
        "train": {**tiny_config()["train"], "dataset": "photos", "inp_size": 12, "channel_shuffle": True},
        "variants": {
            "liif": {},
            "plain": {"train": {"channel_shuffle": False}},
            "up": {"model": {"name": "fixed-scale", "scale": 2, "channels": 1}, "train": {"inp_size": 16}},
        },
    }
    del params["train"]["patches"]
    grey = load_images(prepared.hr("photos", "train"), channels=1)
    assert [tuple(g.shape) for g in grey] == [(1, 64, 72)] * 2
    rgb = load_images(prepared.hr("photos", "train"))
    assert all(torch.equal(g[0], torch.from_numpy(to_grey(c.permute(1, 2, 0).numpy())[0])) for g, c in zip(grey, rgb))
    shuffled, _ = make_training_sets(resolve_variant(params, "liif"), prepared)
    plain, _ = make_training_sets(resolve_variant(params, "plain"), prepared)
    for i in range(len(shuffled)):
        a, b = shuffled[i], plain[i]
        assert a["inp"].shape == (1, 12, 12) and a["gt"].shape == (64, 1)
        assert all(torch.equal(a[k], b[k]) for k in a)
    paired, _ = make_training_sets(resolve_variant(params, "up"), prepared)
    sample = paired[0]
    assert sample["inp"].shape == (1, 16, 16) and sample["gt"].shape == (32 * 32, 1)


def test_the_image_channels_of_a_model_are_known_from_its_arguments():
    """The training wrappers read images by a model's ``channels`` only where that means image channels: a model
    of your own may call its feature width ``channels`` (docs/extending.md's toy)."""
    from liif.models import MODELS, SRModel

    class Toy(SRModel):
        def __init__(self, *, channels: int = 8):
            super().__init__()

    assert Toy.image_channels({"channels": 4}) == 3
    for name in ("liif", "metasr", "fixed-scale", "bicubic"):
        assert MODELS.get(name).image_channels({}) == 3 and MODELS.get(name).image_channels({"channels": 1}) == 1


def test_model_channels_is_one_or_three():
    params = study_params()
    params["model"]["channels"] = 1
    check_params(params)
    params["variants"]["metasr"]["model"]["channels"] = 2
    with pytest.raises(ParamsError, match=r"^params.yaml variants.metasr.model.channels: 2: Input should be 1 or 3"):
        check_params(params)


def cli(capsys, *args):
    from liif.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_with_a_grey_checkpoint_reads_writes_and_scores_grey(photos, tmp_path, capsys):
    d, grey, colour = photos
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "grey.pth", model=build_model(GREY_SPECS["liif"]).eval())
    code, out, err = cli(capsys, "info", tmp_path / "grey.pth")
    assert code == 0 and "channels:    1 (grey)\n" in out and '"channels": 1' in out
    code, _, err = cli(
        capsys,
        "upscale",
        d / "astronaut.png",
        "-o",
        tmp_path / "a.png",
        "--scale",
        "2",
        "--checkpoint",
        tmp_path / "grey.pth",
    )
    assert code == 0 and "reduced its colour to one grey channel" in err
    with Image.open(tmp_path / "a.png") as written:
        assert written.mode == "L" and written.size == (192, 192)
    code, _, err = cli(
        capsys,
        "upscale",
        d / "camera.png",
        "-o",
        tmp_path / "c.npy",
        "--scale",
        "1.5",
        "--checkpoint",
        tmp_path / "grey.pth",
    )
    assert code == 0 and "notice" not in err
    array = np.load(tmp_path / "c.npy")
    lr = torch.from_numpy(grey.copy()).unsqueeze(0).float() / 255
    model, _ = load_checkpoint(tmp_path / "grey.pth")
    assert array.shape == (144, 144) and np.array_equal(array, render_image(model, lr, (144, 144))[..., 0].numpy())
    code, _, _ = cli(
        capsys,
        "upscale",
        d / "camera.png",
        "-o",
        tmp_path / "c.jpg",
        "--scale",
        "2",
        "--checkpoint",
        tmp_path / "grey.pth",
    )
    with Image.open(tmp_path / "c.jpg") as written:
        assert code == 0 and written.mode == "L"
    folder = tmp_path / "hr"
    folder.mkdir()
    (folder / "camera.png").write_bytes((d / "camera.png").read_bytes())
    code, out, err = cli(
        capsys, "evaluate", "--checkpoint", tmp_path / "grey.pth", "--hr", folder, "--scale", "2", "--json"
    )
    assert code == 0 and "one grey channel" in err and "colour is reduced" in err
    scores = json.loads(out)["images"][0]
    expected = evaluate_pairs(model, [folder / "camera.png"], scale=2, protocol="none", device="cpu", progress=False)
    assert scores["psnr"] == pytest.approx(expected[0].psnr)
