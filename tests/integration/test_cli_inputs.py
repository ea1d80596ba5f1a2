"""The inputs the ``liif`` command accepts, converts with a notice, or refuses, run as the command itself:
LR folders of another scale, 16-bit PNGs, float TIFFs, multi-frame images, unwritable output paths and truncated
checkpoints each end in a documented conversion with a notice or in one line, exit status 2 and no traceback."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import output_cases, photo, save_rgb, tiny_liif, write_png_16
from PIL import Image

from liif.images import decode_image
from liif.models.checkpoint import save_checkpoint


def run(*args, command=(sys.executable, "-m", "liif.cli")):
    proc = subprocess.run([*command, *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def refused(code: int, err: str) -> str:
    """The one error line of a refused command."""
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# 16-bit values where Pillow's v >> 8 and round(v / 257) part, and their 8-bit values by round(v / 257)
SIXTEEN = [0, 128, 129, 200, 383, 32896, 51528, 51529, 65280, 65535]


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


def test_evaluate_refuses_an_lr_folder_of_another_scale(hr_and_lr):
    d = hr_and_lr
    ok = run("evaluate", "--checkpoint", "bicubic", "--hr", d / "HR", "--lr", d / "X2", "--scale", "2")
    assert ok[0] == 0, ok[2]
    code, _, err = run(
        "evaluate", "--checkpoint", "bicubic", "--hr", d / "HR", "--lr", d / "X4-named-x2", "--scale", "2"
    )
    assert refused(code, err) == (
        f"liif: error: {d}/X4-named-x2/im0x2.png (16x12) is not {d}/HR/im0.png (64x48) at x2: their sizes imply x4 "
        f"(HR must be LR x 2, up to a modcrop remainder below 2); is {d}/X4-named-x2 the LR folder of another scale?"
    )
    code, _, err = run(
        "evaluate", "--checkpoint", "bicubic", "--hr", d / "HR", "--lr", d / "X2-named-x4", "--scale", "4"
    )
    assert "im0x4.png (32x24) is not" in refused(code, err) and "(64x48) at x4: their sizes imply x2 " in err


def test_upscale_of_a_16_bit_rgb_png_says_which_rule_it_applied(tmp_path):
    write_png_16(np.tile(np.array(SIXTEEN, np.uint16)[None, :, None], (4, 1, 3)), tmp_path / "deep.png")
    code, _, err = run(
        "upscale", tmp_path / "deep.png", "-o", tmp_path / "out.npy", "--scale", "2", "--checkpoint", "bicubic"
    )
    assert code == 0, err
    assert err.splitlines()[0] == (
        f"notice: {tmp_path}/deep.png: converted 16-bit RGB image to 8-bit RGB: round(v / 257) of each 16-bit sample v"
    )
    assert np.load(tmp_path / "out.npy").shape == (8, 20, 3)


def test_a_float_tiff_is_read_as_intensities_in_0_1(tmp_path):
    """Once rendered all black: each float v became round(v) in 0..1 of 255."""
    values = np.array([[0.0, 0.25, 0.5, 1.0], [0.002, 0.998, 0.75, 0.1]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
    with Image.open(tmp_path / "float.tif") as img:
        assert img.mode == "F" and img.format == "TIFF"
    rgb, notice = decode_image(tmp_path / "float.tif")
    assert rgb[..., 0].tolist() == [[0, 64, 128, 255], [1, 254, 191, 26]] and (rgb == rgb[..., :1]).all()
    assert notice == (
        f"{tmp_path}/float.tif: converted F (floating-point) image to 8-bit RGB: "
        "round(v * 255) of each sample v, read as an intensity in [0, 1]"
    )
    code, _, err = run(
        "upscale", tmp_path / "float.tif", "-o", tmp_path / "out.npy", "--size", "2x4", "--checkpoint", "bicubic"
    )
    assert code == 0 and "converted F (floating-point) image" in err, err
    assert np.load(tmp_path / "out.npy").max() > 0.9  # not black


@pytest.mark.parametrize(
    "values,message",
    [
        (
            [[0.0, 255.0]],
            "a floating-point image with values from 0 to 255; float images are read as intensities in [0, 1] only",
        ),
        ([[-0.5, 0.5]], "a floating-point image with values from -0.5 to 0.5; float images are read as"),
        ([[np.nan, 0.5]], "a floating-point image holding NaN or infinite values"),
    ],
    ids=["0-255", "negative", "nan"],
)
def test_a_float_tiff_outside_0_1_is_refused_not_guessed(tmp_path, values, message):
    Image.fromarray(np.array(values, np.float32), mode="F").save(tmp_path / "float.tif")
    code, _, err = run(
        "upscale", tmp_path / "float.tif", "-o", tmp_path / "out.png", "--scale", "2", "--checkpoint", "bicubic"
    )
    assert refused(code, err).startswith(f"liif: error: {tmp_path}/float.tif: {message}")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("suffix,kind", [(".gif", "GIF"), (".tif", "TIFF"), (".png", "PNG"), (".webp", "WEBP")])
def test_an_image_of_several_frames_is_refused(tmp_path, suffix, kind):
    from PIL import features

    if kind == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow has no WebP")
    frames = [Image.fromarray(photo(8, 8, seed=i)) for i in range(2)]
    frames[0].save(tmp_path / f"two{suffix}", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / f"two{suffix}") as img:
        assert img.n_frames == 2
    code, _, err = run(
        "upscale", tmp_path / f"two{suffix}", "-o", tmp_path / "out.png", "--scale", "2", "--checkpoint", "bicubic"
    )
    assert refused(code, err) == (
        f"liif: error: {tmp_path}/two{suffix}: a {kind} file of 2 frames (an animation or several pages); refused, "
        "as which frame is meant is unknown: save the one you want as an image of its own"
    )
    frames[0].save(tmp_path / f"one{suffix}")  # one frame is an image like any other
    code, _, err = run(
        "upscale", tmp_path / f"one{suffix}", "-o", tmp_path / "one-out.png", "--scale", "2", "--checkpoint", "bicubic"
    )
    assert code == 0, err


def test_output_path_errors_are_one_line_from_the_command(tmp_path):
    save_rgb(photo(20, 24), tmp_path / "in.png")
    for output, message in output_cases(tmp_path):
        code, _, err = run("upscale", tmp_path / "in.png", "-o", output, "--scale", "2", "--checkpoint", "bicubic")
        assert refused(code, err) == f"liif: error: {message}"
    assert (tmp_path / "taken.png").read_bytes() == b"keep me" and not list(tmp_path.glob(".*"))
    code, _, err = run(
        "upscale",
        tmp_path / "in.png",
        "-o",
        tmp_path / "taken.png",
        "--scale",
        "2",
        "--checkpoint",
        "bicubic",
        "--overwrite",
    )
    assert code == 0, err
    assert Image.open(tmp_path / "taken.png").size == (48, 40)


@pytest.fixture
def truncated(tmp_path):
    path = tmp_path / "models" / "liif" / "epoch-last.pth"
    save_checkpoint(path, model=tiny_liif(), train_state={"epoch": 3})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # what a full disk or a killed copy leaves
    return path


def recovery_line(path: Path) -> str:
    return (
        rf"liif: error: {re.escape(str(path))}: not a readable PyTorch checkpoint, truncated or corrupted\? \(.+\); "
        rf"to recover, restore the committed checkpoint with `dvc checkout -f {re.escape(str(path.parent))}` "
        rf"\(after `dvc pull {re.escape(str(path.parent))}` if the cache lacks it\), "
        r"or delete epoch-last\.pth and run `dvc repro train@liif` to retrain"
    )


def test_a_truncated_checkpoint_says_how_to_recover(truncated, tmp_path):
    save_rgb(photo(20, 24), tmp_path / "in.png")
    commands = [
        ["info", truncated],
        ["upscale", tmp_path / "in.png", "-o", tmp_path / "out.png", "--scale", "2", "--checkpoint", truncated],
        ["evaluate", "--checkpoint", truncated, "--hr", tmp_path, "--scale", "2"],
    ]
    for argv in commands:
        code, _, err = run(*argv)
        assert re.fullmatch(recovery_line(truncated), refused(code, err)), err
    assert not (tmp_path / "out.png").exists()


def test_the_liif_entry_point_gives_the_same_line(truncated):
    entry = Path(sys.executable).with_name("liif")
    if not entry.is_file():
        pytest.skip("the liif entry point is not installed next to this Python")
    code, _, err = run("info", truncated, command=(str(entry),))
    assert re.fullmatch(recovery_line(truncated), refused(code, err)), err
