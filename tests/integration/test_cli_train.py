"""``liif train --images DIR --out model.pth``: a model from a folder without DVC, usable by upscale, evaluate and
info; a killed run resumes with --resume; mistakes are one line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from liif.sources.sample import export_sample_suite

pytestmark = pytest.mark.integration

LIIF = [sys.executable, "-m", "liif.cli"]
FAST = ["--epochs", "3", "--val", "1"]


def liif(*args, cwd):
    return subprocess.run([*LIIF, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Five real photographs at 200 px (a 48 px patch at x4 needs 192)."""
    root = tmp_path_factory.mktemp("photos")
    for png in export_sample_suite(["astronaut", "coffee", "chelsea", "rocket", "camera"], root / "suite"):
        Image.open(png).resize((200, 200), Image.Resampling.BICUBIC).save(root / f"{png.stem}.jpg", quality=95)
    return root


def test_a_model_trained_on_a_folder_upscales_evaluates_and_describes_itself(photos, tmp_path):
    done = liif("train", "--images", photos, "--out", tmp_path / "mine.pth", *FAST, "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"-> {tmp_path / 'mine.pth'} (3 epochs, best validation PSNR" in done.stderr
    history = (tmp_path / "mine.pth.work/run/history.tsv").read_text().splitlines()
    assert len(history) == 4  # header and three epochs
    info = liif("info", tmp_path / "mine.pth", cwd=tmp_path)
    assert info.returncode == 0 and "epoch:       3 of 3" in info.stdout and "model:       liif" in info.stdout
    up = liif(
        "upscale",
        photos / "coffee.jpg",
        "-o",
        tmp_path / "x3.png",
        "--scale",
        "3",
        "--checkpoint",
        tmp_path / "mine.pth",
        cwd=tmp_path,
    )
    assert up.returncode == 0, up.stderr and Image.open(tmp_path / "x3.png").size == (600, 600)
    scored = liif(
        "evaluate", "--checkpoint", tmp_path / "mine.pth", "--hr", photos, "--scale", "2", "--json", cwd=tmp_path
    )
    assert scored.returncode == 0, scored.stderr
    again = liif("train", "--images", photos, "--out", tmp_path / "mine.pth", *FAST, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].endswith(
        "mine.pth.work exists: --resume continues that run; otherwise delete it or choose another --out"
    )


def test_a_killed_training_resumes_where_it_stopped(photos, tmp_path):
    out = tmp_path / "mine.pth"
    args = [*LIIF, "train", "--images", str(photos), "--out", str(out), "--epochs", "8", "--val", "1"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "mine.pth.work/run/epoch-last.pth"
    deadline = time.monotonic() + 300
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.exists(), proc.stderr.read()[-2000:] if proc.poll() is not None else "no epoch saved"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-written
    resumed = subprocess.run([*args, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming liif from" in resumed.stderr and out.is_file()
    epochs = [line.split("\t")[0] for line in (last.parent / "history.tsv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(1, 9)]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs 0: must be at least 1"),
        (["--scale-max", "0.5"], "--scale-max 0.5: must be a number of at least 1"),
        (["--out", "model.png"], "--out model.png: name a .pth file, e.g. model.pth"),
        (["--images", "nowhere"], "nowhere: no such folder"),
        (["--val", "5"], "5 usable images, 5 for val and 0 for test leave none to train on"),
        (["--variant", "nope"], "--variant nope: not a variant of"),
    ],
)
def test_mistakes_are_one_line(photos, tmp_path, flags, message):
    base = {"--images": str(photos), "--out": "model.pth"}
    for flag, value in zip(flags[::2], flags[1::2]):
        base[flag] = value
    args = [item for pair in base.items() for item in pair]
    done = liif("train", *args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "model.pth").exists()
