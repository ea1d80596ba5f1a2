"""The ``liif`` command as a user runs it: a real subprocess, real files."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_image, tiny_liif
from PIL import Image

from liif.models.checkpoint import save_checkpoint


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "liif.cli", *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


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


def test_upscale_png_and_npy_agree(workdir):
    for out in ("out.png", "out.npy", "out.jpg"):
        code, _, err = run(
            "upscale", workdir / "rgb.png", "-o", workdir / out, "--scale", "2.5", "--checkpoint", workdir / "tiny.pth"
        )
        assert code == 0, err
    exact = np.load(workdir / "out.npy")
    assert exact.shape == (50, 60, 3) and exact.dtype == np.float32
    png = np.asarray(Image.open(workdir / "out.png"))
    assert np.abs(png / 255 - exact).max() <= 0.5 / 255 + 1e-6
    assert Image.open(workdir / "out.jpg").size == (60, 50)


def test_upscale_explicit_size_and_per_axis_scale(workdir):
    code, _, err = run(
        "upscale", workdir / "rgb.png", "-o", workdir / "s.npy", "--size", "33x70", "--checkpoint", workdir / "tiny.pth"
    )
    assert code == 0, err
    assert np.load(workdir / "s.npy").shape == (33, 70, 3)
    code, _, err = run(
        "upscale", workdir / "rgb.png", "-o", workdir / "a.npy", "--scale", "2x3", "--checkpoint", "bicubic"
    )
    assert code == 0, err
    assert np.load(workdir / "a.npy").shape == (40, 72, 3)


@pytest.mark.parametrize(
    "name,mode", [("grey.png", "L"), ("rgba.png", "RGBA"), ("palette.png", "P"), ("deep.png", "I;16")]
)
def test_upscale_converts_other_modes_with_a_notice(workdir, name, mode):
    out = workdir / f"{name}.npy"
    code, _, err = run("upscale", workdir / name, "-o", out, "--scale", "2", "--checkpoint", "bicubic")
    assert code == 0, err
    assert f"converted {mode} image to 8-bit RGB" in err
    assert np.load(out).shape == (40, 48, 3)


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.png", "--scale", "2"], "missing.png: no such file"),
        (["broken.png", "--scale", "2"], "broken.png: not a readable image"),
        (["rgb.png", "--scale", "0"], "must be positive"),
        (["rgb.png", "--scale", "-3"], "must be positive"),
        (["rgb.png", "--scale", "abc"], "expected a number"),
        (["rgb.png", "--size", "0x10"], "--size"),
        (["rgb.png", "--scale", "2000", "--max-megapixels", "1"], "exceeds --max-megapixels"),
        (["rgb.png", "--scale", "1e308"], "absurdly large"),
        (["rgb.png", "--scale", "2", "--max-megapixels", "nan"], "--max-megapixels nan: must be a positive number"),
        (["rgb.png", "--scale", "2", "--max-megapixels", "-1"], "must be a positive number"),
        (["rgb.png", "--scale", "2", "--checkpoint", "@rgb.png"], "not a PyTorch checkpoint"),
        (["rgb.png", "--scale", "2", "--checkpoint", "@nothere.pth"], "no such checkpoint"),
    ],
)
def test_upscale_bad_input_gets_one_line_and_no_output(workdir, args, message):
    out = workdir / "never.png"
    argv = ["upscale", workdir / args[0], "-o", out, *args[1:]]
    if "--checkpoint" not in args:
        argv += ["--checkpoint", workdir / "tiny.pth"]
    argv = [workdir / a[1:] if isinstance(a, str) and a.startswith("@") else a for a in argv]
    code, _, err = run(*argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(workdir.glob(".never*"))


def test_unknown_output_suffix_is_refused_before_work(workdir):
    code, _, err = run(
        "upscale", workdir / "rgb.png", "-o", workdir / "x.gif2", "--scale", "2", "--checkpoint", "bicubic"
    )
    assert code == 2 and "unknown output format" in err


def test_info(workdir):
    code, out, err = run("info", workdir / "tiny.pth")
    assert code == 0, err
    assert "model:       liif" in out and "epoch:       7" in out
    assert "val PSNR:    25.50 dB at the last epoch, best 26.10 dB" in out and "lr:          1.000e-04" in out
    n = sum(p.numel() for p in tiny_liif().parameters())
    assert f"{n:,}" in out


def test_evaluate_with_and_without_lr_folder(workdir, tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "X2"
    hr_dir.mkdir()
    lr_dir.mkdir()
    for i in range(2):
        hr = (random_image(32, 24, seed=i).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(hr).save(hr_dir / f"im{i}.png")
        Image.fromarray(hr).resize((12, 16), Image.Resampling.BICUBIC).save(lr_dir / f"im{i}x2.png")
    code, out, err = run(
        "evaluate",
        "--checkpoint",
        "bicubic",
        "--hr",
        hr_dir,
        "--lr",
        lr_dir,
        "--scale",
        "2",
        "--protocol",
        "benchmark",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert [im["name"] for im in result["images"]] == ["im0.png", "im1.png"]
    assert result["mean_psnr"] == pytest.approx(np.mean([im["psnr"] for im in result["images"]]))
    code, out, err = run(
        "evaluate", "--checkpoint", workdir / "tiny.pth", "--hr", hr_dir, "--scale", "3", "--protocol", "div2k"
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("mean")
    code, _, err = run("evaluate", "--checkpoint", "bicubic", "--hr", hr_dir, "--lr", lr_dir, "--scale", "3")
    assert code == 2 and "no LR image im0x3.png" in err


class WritesAMarker:
    """Unpickling this calls ``Path(marker).touch()``: the file appears only if torch ran pickled code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.parametrize("command", ["info", "upscale"])
def test_torch_is_never_asked_to_unpickle_code(workdir, command):
    marker = workdir / f"code-ran-{command}"
    evil = workdir / f"evil-{command}.pth"
    torch.save({"format": "liif-repro", "payload": WritesAMarker(marker)}, evil)  # a real torch zip file
    args = [evil] if command == "info" else [workdir / "rgb.png", "-o", workdir / "never.npy", "--checkpoint", evil]
    code, _, err = run(command, *args, *(["--scale", "2"] if command == "upscale" else []))
    assert not marker.exists(), "loading the checkpoint ran the code pickled in it"
    assert code == 2, err
    assert err.strip() == (
        f"liif: error: {evil}: refused: holds Python objects other than tensors and plain data "
        "(loaded with weights_only=True)"
    )
    assert not (workdir / "never.npy").exists()
    loads = [  # and no other load in the library bypasses the guard
        (path.name, line.strip())
        for path in (Path(__file__).resolve().parents[1] / "liif").rglob("*.py")
        for line in path.read_text().splitlines()
        if "torch.load(" in line
    ]
    assert loads and all("weights_only=True" in line for _, line in loads), loads


def test_a_huge_image_in_a_small_file_is_refused_from_its_header(workdir):
    """A 12000 x 12000 PNG of a few kB: the output guard must run before 5 GB of decoding."""
    Image.new("1", (12000, 12000)).save(workdir / "huge.png")
    assert (workdir / "huge.png").stat().st_size < 100_000
    command = [
        sys.executable,
        "-m",
        "liif.cli",
        "upscale",
        str(workdir / "huge.png"),
        "-o",
        str(workdir / "never.png"),
        "--scale",
        "2",
        "--checkpoint",
        "bicubic",
    ]
    watcher = (
        "import json, resource, subprocess\n"  # a fresh parent: its only child is the command
        f"p = subprocess.run({command!r}, capture_output=True, text=True)\n"
        "print(json.dumps([p.returncode, p.stderr, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    out = subprocess.run([sys.executable, "-c", watcher], capture_output=True, text=True).stdout
    code, err, peak_kb = json.loads(out)
    assert code == 2 and "24000x24000 (576 MP) exceeds --max-megapixels 400" in err and "Traceback" not in err
    assert int(peak_kb) < 1 << 20  # under 1 GB: decoding the image would take 5 GB


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


def test_the_input_is_not_overwritten_without_asking(workdir, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes((workdir / "rgb.png").read_bytes())
    code, _, err = run("upscale", image, "-o", image, "--scale", "2", "--checkpoint", "bicubic")
    assert code == 2 and "is the input image" in err and "--overwrite" in err
    assert image.read_bytes() == (workdir / "rgb.png").read_bytes()
    code, _, err = run("upscale", image, "-o", image, "--scale", "2", "--checkpoint", "bicubic", "--overwrite")
    assert code == 0, err
    assert Image.open(image).size == (48, 40)


def test_an_unwritable_output_folder_is_refused_before_rendering(workdir):
    readonly = "/sys"  # sysfs refuses new files even to root, unlike a chmod-ed folder
    try:
        (open(f"{readonly}/probe.png", "wb")).close()
        pytest.skip(f"{readonly} is writable here")
    except OSError:
        pass
    code, _, err = run(
        "upscale",
        workdir / "rgb.png",
        "-o",
        f"{readonly}/out.png",
        "--scale",
        "2",
        "--checkpoint",
        workdir / "tiny.pth",
    )
    assert code == 2 and f"cannot write into {readonly}" in err and "Traceback" not in err


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


def test_evaluate_refuses_scales_it_cannot_honour(workdir, tmp_path):
    for scale, message in (("inf", "must be a positive number"), ("1e308", "integer scales up to 1000")):
        code, _, err = run("evaluate", "--checkpoint", "bicubic", "--hr", workdir, "--lr", workdir, "--scale", scale)
        assert code == 2 and message in err and "Traceback" not in err


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
