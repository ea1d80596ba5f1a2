"""The ``liif`` command as a user runs it: a real subprocess, real files."""

import json
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
        for path in (Path(__file__).resolve().parents[2] / "liif").rglob("*.py")
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


def test_evaluate_refuses_scales_it_cannot_honour(workdir, tmp_path):
    for scale, message in (("inf", "must be a positive number"), ("1e308", "integer scales up to 1000")):
        code, _, err = run("evaluate", "--checkpoint", "bicubic", "--hr", workdir, "--lr", workdir, "--scale", scale)
        assert code == 2 and message in err and "Traceback" not in err
