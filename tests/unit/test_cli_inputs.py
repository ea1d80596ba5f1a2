"""The inputs the ``liif`` command accepts, converts with a notice, or refuses in one line: HR/LR pairs of the
wrong scale, 16-bit PNGs and TIFFs, JPEGs with extra pictures, and output paths, each checked before any image is
rendered."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import output_cases, photo, save_rgb, tiny_liif, write_png_16
from PIL import Image

from liif.images import ImageError, decode_image
from liif.models.checkpoint import save_checkpoint

# 16-bit values where Pillow's v >> 8 and round(v / 257) part, and their 8-bit values by round(v / 257)
SIXTEEN = [0, 128, 129, 200, 383, 32896, 51528, 51529, 65280, 65535]


EIGHT = [0, 0, 1, 1, 1, 128, 200, 201, 254, 255]


@pytest.fixture
def hr_and_lr(tmp_path):
    """Two 64x48 HR images with their x2 and x4 LR images (PIL bicubic), EDSR names."""
    for i in range(2):
        hr = photo(64, 48, seed=i)
        save_rgb(hr, tmp_path / "HR" / f"im{i}.png")
        for s in (2, 4):
            lr = np.asarray(Image.fromarray(hr).resize((48 // s, 64 // s), Image.Resampling.BICUBIC))
            save_rgb(lr, tmp_path / f"X{s}" / f"im{i}x{s}.png")
            save_rgb(lr, tmp_path / f"X{s}-named-x{6 - s}" / f"im{i}x{6 - s}.png")  # x4 images named as x2, and back
    return tmp_path


def test_every_pair_is_checked_before_any_image_is_rendered(hr_and_lr, monkeypatch):
    import liif.eval.scores
    from liif.models import Bicubic

    d = hr_and_lr
    save_rgb(np.asarray(Image.open(d / "X4" / "im1x4.png")), d / "X2" / "im1x2.png")  # only the second pair is wrong
    rendered = []
    monkeypatch.setattr(liif.eval.scores, "render_image", lambda *a, **k: rendered.append(a) or torch.zeros(64, 48, 3))
    hr_paths = sorted((d / "HR").iterdir())
    with pytest.raises(
        ImageError, match=r"X2/im1x2\.png \(16x12\) is not .*im1\.png \(64x48\) at x2: their sizes imply x4"
    ):
        liif.eval.scores.evaluate_pairs(
            Bicubic(), hr_paths, scale=2, protocol="benchmark", lr_dir=d / "X2", progress=False
        )
    assert rendered == []


def test_a_modcrop_remainder_below_the_scale_is_the_paper_protocol(tmp_path):
    """HR 67x50 at x3 pairs with 22x16 LR (HR cropped to 66x48); 69x50 would not (it implies more than x3)."""
    from liif.eval.scores import check_pair, evaluate_pairs
    from liif.metrics.psnr import psnr
    from liif.models import Bicubic

    hr = photo(67, 50)
    save_rgb(hr, tmp_path / "HR" / "a.png")
    lr = np.array(Image.fromarray(hr[:66, :48]).resize((16, 22), Image.Resampling.BICUBIC))
    save_rgb(lr, tmp_path / "X3" / "ax3.png")
    [score] = evaluate_pairs(
        Bicubic(), [tmp_path / "HR" / "a.png"], scale=3, protocol="benchmark", lr_dir=tmp_path / "X3", progress=False
    )
    lr_t, crop = torch.from_numpy(lr).permute(2, 0, 1) / 255, torch.from_numpy(hr[:66, :48]).permute(2, 0, 1) / 255
    expected = psnr(Bicubic().resize(lr_t, (66, 48)).permute(2, 0, 1), crop, protocol="benchmark", scale=3)
    assert score.psnr == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ImageError, match=r"imply x3\.14 by height, x3\.12 by width"):
        check_pair(Path("hr.png"), (69, 50), Path("lr.png"), (22, 16), 3)


def test_the_shipped_benchmark_pairs_pass_the_check(datasets_dir):
    """Every HR/LR pair of the EDSR benchmark sets (spec 4) satisfies the pairing rule, from the headers."""
    from liif.eval.scores import check_pair, lr_partner
    from liif.images import image_size, list_images

    pairs = 0
    for lr_dir in sorted((datasets_dir / "benchmark").glob("*/LR_bicubic/X*")):
        scale = int(lr_dir.name[1:])
        for hr_path in list_images(lr_dir.parents[1] / "HR"):
            lr_path = lr_partner(hr_path, lr_dir, scale)
            check_pair(hr_path, image_size(hr_path), lr_path, image_size(lr_path), scale)
            pairs += 1
    assert pairs > 0


def test_the_pipeline_evaluation_checks_its_shipped_lr_sets(tmp_path):
    """``evaluate_variant`` scores shipped x2-x4 LR folders through the same pairing: a wrong-scale set stops it."""
    from liif.config.variants import config_hash
    from liif.data.layout import PreparedData
    from liif.eval.scores import evaluate_variant
    from liif.models import Bicubic

    config = {"variant": "bicubic", "model": {"name": "bicubic", "args": {}}, "train": None}
    prepared = PreparedData(tmp_path / "prepared")
    hr = photo(48, 60)
    save_rgb(hr, prepared.hr("set", "test") / "im0.png")
    save_rgb(
        np.asarray(Image.fromarray(hr).resize((15, 12), Image.Resampling.BICUBIC)),
        prepared.lr("set", "test", 2) / "im0x2.png",
    )
    save_checkpoint(
        tmp_path / "models" / "bicubic" / "epoch-last.pth",
        model=Bicubic(),
        metadata={"variant": "bicubic", "config_hash": config_hash(config)},
    )
    evaluation = {
        "checkpoint": "epoch-last.pth",
        "datasets": {"set": {"protocol": "benchmark", "scales": [2]}},
        "metrics": ["psnr"],
    }
    with pytest.raises(
        ImageError, match=r"im0x2\.png \(12x15\) is not .*im0\.png \(48x60\) at x2: their sizes imply x4"
    ):
        evaluate_variant(
            config, model_dir=tmp_path / "models" / "bicubic", prepared=prepared, evaluation=evaluation, device="cpu"
        )


@pytest.mark.parametrize("channels,layout", [(1, "I;16"), (2, "16-bit LA"), (3, "16-bit RGB"), (4, "16-bit RGBA")])
def test_16_bit_pngs_of_any_channel_count_become_8_bit_by_round_v_over_257(tmp_path, channels, layout):
    values = np.array(SIXTEEN, np.uint16)
    samples = np.stack([np.roll(values, k) for k in range(channels)], -1)[None]  # 1 x 10 x channels
    write_png_16(samples, tmp_path / "deep.png")
    if channels == 3:  # the case Pillow gets wrong: it keeps the high byte of each sample
        with Image.open(tmp_path / "deep.png") as img:
            assert img.mode == "RGB" and img.tile[0][3] == "RGB;16B"
            assert np.asarray(img)[0, :, 0].tolist() == [v >> 8 for v in SIXTEEN]
    rgb, notice = decode_image(tmp_path / "deep.png")
    expected = np.stack([np.roll(np.array(EIGHT, np.uint8), k) for k in range(channels)], -1)[None]
    expected = np.repeat(expected[..., :1], 3, -1) if channels < 3 else expected[..., :3]  # grey -> RGB, alpha dropped
    assert rgb.tolist() == expected.tolist()
    assert (
        notice == f"{tmp_path}/deep.png: converted {layout} image to 8-bit RGB: round(v / 257) of each 16-bit sample v"
    )


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_16_bit_rgb_tiffs_follow_the_same_rule(tmp_path, byteorder, compression):
    tifffile = pytest.importorskip("tifffile")
    samples = np.stack([np.array(SIXTEEN, np.uint16), np.array(SIXTEEN[::-1], np.uint16), np.full(10, 65280)], -1)
    tifffile.imwrite(
        tmp_path / "deep.tif",
        samples[None].astype(np.uint16),
        byteorder=byteorder,
        compression=compression,
        photometric="rgb",
    )
    rgb, notice = decode_image(tmp_path / "deep.tif")
    assert rgb[0].tolist() == [[a, b, 254] for a, b in zip(EIGHT, EIGHT[::-1])]
    assert "converted 16-bit RGB image to 8-bit RGB: round(v / 257)" in notice


def test_a_jpeg_with_extra_pictures_gives_its_primary_picture_with_a_notice(tmp_path):
    primary, extra = Image.fromarray(photo(12, 16)), Image.new("RGB", (8, 6), "blue")
    primary.save(tmp_path / "phone.mpo", format="MPO", save_all=True, append_images=[extra])
    rgb, notice = decode_image(tmp_path / "phone.mpo")
    with Image.open(tmp_path / "phone.mpo") as img:
        assert img.format == "MPO" and img.n_frames == 2
        assert rgb.tolist() == np.asarray(img.convert("RGB")).tolist() and rgb.shape == (12, 16, 3)
    assert notice == f"{tmp_path}/phone.mpo: used the primary picture of its 2 pictures (MPO)"


def test_every_output_path_is_checked_before_rendering(tmp_path, monkeypatch, capsys):
    import liif.cli

    save_checkpoint(tmp_path / "tiny.pth", model=tiny_liif())
    save_rgb(photo(20, 24), tmp_path / "in.png")

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded or run before the output path was checked")

    monkeypatch.setattr(liif.cli, "render_image", never)
    monkeypatch.setattr(liif.cli, "load_model", never)
    for output, message in output_cases(tmp_path):
        argv = [
            "upscale",
            str(tmp_path / "in.png"),
            "-o",
            str(output),
            "--scale",
            "2",
            "--checkpoint",
            str(tmp_path / "tiny.pth"),
        ]
        assert liif.cli.main(argv) == 2
        assert capsys.readouterr().err.strip() == f"liif: error: {message}"
    assert (tmp_path / "taken.png").read_bytes() == b"keep me"


def test_an_unwritable_output_folder_is_refused_before_rendering(tmp_path, monkeypatch, capsys):
    import liif.cli

    try:  # sysfs refuses new files even to root, unlike a chmod-ed folder
        open("/sys/probe.png", "wb").close()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    save_rgb(photo(20, 24), tmp_path / "in.png")
    monkeypatch.setattr(liif.cli, "render_image", lambda *a, **k: pytest.fail("rendered before the output check"))
    assert (
        liif.cli.main(
            ["upscale", str(tmp_path / "in.png"), "-o", "/sys/out.png", "--scale", "2", "--checkpoint", "bicubic"]
        )
        == 2
    )
    assert re.fullmatch(
        r"liif: error: /sys/out\.png: cannot write into /sys \(.+\); choose another output folder",
        capsys.readouterr().err.strip(),
    )
