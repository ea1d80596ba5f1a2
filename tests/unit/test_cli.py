"""The ``liif`` command as a user runs it: a real subprocess, real files."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import random_image, tiny_liif
from PIL import Image

from liif.models.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    history = [{"epoch": 7, "loss": 0.1, "val_psnr": 25.5, "lr": 1e-4, "seconds": 1.0}]
    save_checkpoint(
        d / "tiny.pth", model=tiny_liif(), train_state={"epoch": 7, "history": history, "best_val_psnr": 26.1}
    )
    img = (random_image(20, 24).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(img).save(d / "rgb.png")
    Image.fromarray(img[..., 0]).save(d / "grey.png")
    Image.fromarray(np.dstack([img, np.full(img.shape[:2], 128, np.uint8)])).save(d / "rgba.png")
    Image.fromarray(img).convert("P").save(d / "palette.png")
    Image.fromarray(img[..., 0].astype(np.uint16) * 257).save(d / "deep.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return d


def test_decompression_bombs_get_the_one_line_error(workdir, monkeypatch, capsys):
    from PIL import Image as PILImage

    from liif.cli import main

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # the 20 x 24 test image is now a "bomb"
    assert (
        main(
            [
                "upscale",
                str(workdir / "rgb.png"),
                "-o",
                str(workdir / "never.png"),
                "--scale",
                "2",
                "--checkpoint",
                "bicubic",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "refused as a decompression bomb" in err and len(err.strip().splitlines()) == 1


def test_exif_orientation_is_applied_as_viewers_do(tmp_path):
    from liif.images import image_size, load_image

    pixels = (random_image(20, 30).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif)
    image, notice = load_image(tmp_path / "phone.png")
    assert image.shape == (3, 30, 20) and image_size(tmp_path / "phone.png") == (30, 20)
    assert "EXIF orientation 6" in notice
    expected = np.rot90(pixels, k=-1)  # clockwise
    assert np.array_equal((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected)


def test_an_undefined_exif_orientation_leaves_the_pixels_as_stored(tmp_path):
    from liif.images import image_size, load_image

    exif = Image.Exif()
    exif[0x0112] = 9  # not one of the 8 defined values
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "odd.png", exif=exif)
    assert image_size(tmp_path / "odd.png") == (20, 30) and load_image(tmp_path / "odd.png")[0].shape == (3, 20, 30)


def cli(capsys, *args):
    """``liif`` in this process (cheaper than ``run``): exit code, stdout, stderr."""
    from liif.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_scales_below_1_are_refused_in_one_line(workdir, capsys):
    out = workdir / "small.png"
    for scale in ("0.5", "1x0.5"):
        code, _, err = cli(
            capsys, "upscale", workdir / "rgb.png", "-o", out, "--scale", scale, "--checkpoint", "bicubic"
        )
        assert code == 2 and err == f"liif: error: --scale '{scale}': factors below 1 would shrink the image; " + (
            "liif up-samples (factors of 1 or more)\n"
        )
        assert not out.exists()
    for scale in ("0.01", "1e-300"):
        code, stdout, err = cli(capsys, "evaluate", "--checkpoint", "bicubic", "--hr", workdir, "--scale", scale)
        assert code == 2 and stdout == ""
        assert err == f"liif: error: --scale {scale}: factors below 1 would up-sample the LR image; use 1 or more\n"


def test_evaluate_json_is_strict_and_an_exact_reconstruction_has_a_null_psnr(workdir, tmp_path, capsys):
    """At x1 Bicubic returns the HR image itself: an infinite PSNR, which JSON cannot hold."""
    hr_dir = tmp_path / "HR"
    hr_dir.mkdir()
    (hr_dir / "rgb.png").write_bytes((workdir / "rgb.png").read_bytes())
    code, out, err = cli(capsys, "evaluate", "--checkpoint", "bicubic", "--hr", hr_dir, "--scale", "1", "--json")
    assert code == 0, err

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    result = json.loads(out, parse_constant=no_constants)
    assert result["images"][0]["psnr"] is None and result["images"][0]["psnr_exact"] is True
    assert result["mean_psnr"] is None and "infinite PSNR" in result["note"] and result["mean_ssim"] == 1.0
    code, out, err = cli(capsys, "evaluate", "--checkpoint", "bicubic", "--hr", hr_dir, "--scale", "1")
    assert code == 0 and "exact (infinite PSNR)" in out and "inf" not in out.replace("infinite", "")


def test_a_score_that_is_not_a_number_is_refused_not_printed(workdir, monkeypatch, capsys):
    import liif.cli
    from liif.eval.scores import ImageScore

    monkeypatch.setattr(
        liif.cli,
        "evaluate_pairs",
        lambda *a, **k: [ImageScore(name="rgb.png", psnr=math.nan, ssim=math.nan, grey=False)],
    )
    for extra in ((), ("--json",)):
        code, out, err = cli(capsys, "evaluate", "--checkpoint", "bicubic", "--hr", workdir, "--scale", "2", *extra)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith("liif: error: rgb.png: the prediction scores PSNR nan and SSIM nan, not numbers; ")


def save_trained(path, *, epoch: int, kept: str | None = None):
    history = [{"epoch": e, "loss": 0.1, "val_psnr": 20.0 + e / 10, "lr": 1e-3, "seconds": 1.0} for e in (1, epoch)]
    metadata = {"variant": "liif", "config_hash": "0123", "epochs": 300, **({"kept": kept} if kept else {})}
    state = {"epoch": epoch, "history": history, "best_val_psnr": 22.1}
    save_checkpoint(path, model=tiny_liif(), train_state=state, metadata=metadata)


def test_an_unfinished_training_is_named_by_info_and_evaluate(workdir, tmp_path, capsys):
    save_trained(tmp_path / "epoch-last.pth", epoch=21)
    save_trained(tmp_path / "epoch-best.pth", epoch=21, kept="best validation PSNR")
    save_trained(tmp_path / "done.pth", epoch=300)
    epochs = {}
    for name in ("epoch-last.pth", "epoch-best.pth", "done.pth"):
        code, out, _ = cli(capsys, "info", tmp_path / name)
        assert code == 0
        epochs[name] = next(line for line in out.splitlines() if line.startswith("epoch:"))
    assert epochs == {
        "epoch-last.pth": "epoch:       21 of 300 (unfinished)",
        "epoch-best.pth": "epoch:       21 of 300 (best validation PSNR)",
        "done.pth": "epoch:       300 of 300",
    }
    (tmp_path / "HR").mkdir()
    (tmp_path / "HR" / "rgb.png").write_bytes((workdir / "rgb.png").read_bytes())
    hr = ("--hr", tmp_path / "HR", "--scale", "2", "--json")  # --json: no progress bar on stderr
    code, _, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "epoch-last.pth", *hr)
    assert code == 0 and err == (
        f"liif: warning: {tmp_path / 'epoch-last.pth'} is epoch 21 of 300 of a training that did not finish: "
        "these scores are not its trained model's\n"
    )
    for name in ("epoch-best.pth", "done.pth"):
        assert cli(capsys, "evaluate", "--checkpoint", tmp_path / name, *hr)[2] == ""


@pytest.mark.parametrize(
    "change, shown",
    [
        ({"train_state": {"epoch": 7, "history": [1, 2], "best_val_psnr": 26.1}}, "history:     malformed (the last"),
        ({"train_state": {"epoch": 7, "history": [{"epoch": 7}], "best_val_psnr": None}}, "val PSNR:    unknown"),
        ({"metadata": ["variant", "liif"]}, "metadata:    malformed (a list, not a mapping): not shown"),
        ({"train_state": {"epoch": "7", "history": {}, "best_val_psnr": "x"}}, "epoch:       unknown (malformed: '7')"),
    ],
    ids=["history-of-numbers", "entry-without-keys", "metadata-list", "text-epoch"],
)
def test_info_shows_what_a_malformed_checkpoint_holds_and_names_the_rest(tmp_path, capsys, change, shown):
    path = tmp_path / "odd.pth"
    save_checkpoint(path, model=tiny_liif())
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, **change}, path)
    code, out, err = cli(capsys, "info", path)
    assert code == 0 and err == "" and shown in out, out
    assert out.startswith(f"file:        {path}\nformat:      liif-repro\nmodel:       liif\n")


@pytest.mark.parametrize("value", [math.nan, 1e38], ids=["nan-weight", "overflowing-weights"])
def test_a_model_whose_output_is_not_a_number_makes_no_image_and_no_score(workdir, tmp_path, capsys, value):
    """A NaN weight is refused on load; finite weights whose output overflows are refused after rendering,
    before anything is written: clamping keeps NaN, so the image would be black and the score nan."""
    model = tiny_liif()
    with torch.no_grad():
        if math.isnan(value):
            model.decoder.layers[0].weight[0, 0] = value
        else:
            for p in model.decoder.parameters():
                p.fill_(value)
    save_checkpoint(tmp_path / "bad.pth", model=model)
    for suffix in (".png", ".npy"):
        out = tmp_path / f"out{suffix}"
        code, _, err = cli(
            capsys, "upscale", workdir / "rgb.png", "-o", out, "--scale", 2, "--checkpoint", tmp_path / "bad.pth"
        )
        assert code == 2 and err.count("\n") == 1 and "NaN or infinite" in err, err
        assert not out.exists()
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "rgb.png").write_bytes((workdir / "rgb.png").read_bytes())
    code, stdout, err = cli(
        capsys, "evaluate", "--checkpoint", tmp_path / "bad.pth", "--hr", hr, "--scale", 2, "--json"
    )
    assert code == 2 and stdout == "" and err.count("\n") == 1 and "NaN or infinite" in err, err
