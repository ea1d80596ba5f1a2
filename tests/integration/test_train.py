"""Training in a process of its own: a run killed at any point resumes to the weights of an uninterrupted one, and
the number of loader worker processes changes no weight."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import random_image, tiny_config

from liif.config.variants import config_hash
from liif.models.checkpoint import load_checkpoint, read_checkpoint
from liif.train.loop import fit
from liif.train.patches import DownsampledPatches

WORKER = Path(__file__).resolve().parents[1] / "train_worker.py"


def run_worker(out_dir, config_path, stderr=subprocess.DEVNULL):
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(out_dir), str(config_path)], stdout=subprocess.DEVNULL, stderr=stderr
    )


def saved_epoch(path) -> int:
    """The epoch of the checkpoint at ``path``; 0 when there is none (yet)."""
    try:
        return read_checkpoint(path)["train_state"]["epoch"]
    except Exception:  # not written yet; mid-write reads may fail (atomic rename makes this rare)
        return 0


def kill_when(proc, condition, timeout=300):
    """SIGKILL ``proc`` as soon as ``condition()`` holds (polled every 50 ms)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    proc.wait()


KILL_CONFIG = tiny_config(epochs=8, repeat=16)  # enough epochs left after a kill that the race cannot end it


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """KILL_CONFIG trained by train_worker.py without interruption: (its config file, its model folder)."""
    root = tmp_path_factory.mktemp("straight")
    config_path = root / "config.json"
    config_path.write_text(json.dumps(KILL_CONFIG))
    assert run_worker(root / "model", config_path).wait(timeout=300) == 0
    return config_path, root / "model"


def assert_same_run(straight, other):
    """``other`` ended with ``straight``'s weights and loss curve, and no temporary file is left."""
    a, raw_a = load_checkpoint(straight / "epoch-last.pth")
    b, raw_b = load_checkpoint(other / "epoch-last.pth")
    assert raw_b["train_state"]["epoch"] == raw_a["train_state"]["epoch"]
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert [h["loss"] for h in raw_a["train_state"]["history"]] == [h["loss"] for h in raw_b["train_state"]["history"]]
    assert not list(other.glob(".*.tmp"))


def test_resume_after_kill_ends_with_identical_weights(tmp_path, straight_run):
    config_path, straight = straight_run
    killed = tmp_path / "killed"
    proc = run_worker(killed, config_path)
    kill_when(proc, lambda: saved_epoch(killed / "epoch-last.pth") >= 2)
    assert saved_epoch(killed / "epoch-last.pth") < 8
    assert run_worker(killed, config_path).wait(timeout=300) == 0
    assert_same_run(straight, killed)


def test_a_run_killed_by_another_configuration_resumes_where_it_stopped(tmp_path, straight_run):
    """A killed mid-run; B (another recipe) starts and is killed in its first epoch; A again: it resumes at its
    epoch, from the folder B moved it into, and ends as if nothing had happened."""
    config_path, straight = straight_run
    out = tmp_path / "model"
    proc = run_worker(out, config_path)
    kill_when(proc, lambda: saved_epoch(out / "epoch-last.pth") >= 3)
    stopped_at = saved_epoch(out / "epoch-last.pth")
    assert 3 <= stopped_at < 8
    a_files = {p.name for p in out.iterdir()} - {"mlflow-run.txt"}
    assert {"epoch-last.pth", "epoch-best.pth", "history.tsv"} <= a_files

    b = tiny_config(epochs=8, repeat=400, lr=5e-4)  # another configuration, with a long first epoch
    b_path = tmp_path / "b.json"
    b_path.write_text(json.dumps(b))
    aside = out / "superseded" / config_hash(KILL_CONFIG)  # fit() without inputs: the key is the hash alone
    proc = run_worker(out, b_path)
    kill_when(proc, lambda: (aside / "epoch-last.pth").is_file())
    assert not (out / "epoch-last.pth").exists()  # B saved nothing, and A was moved, not removed
    assert {p.name for p in aside.iterdir()} == a_files
    assert saved_epoch(aside / "epoch-last.pth") == stopped_at

    with open(tmp_path / "a-again.log", "w+") as log:
        assert run_worker(out, config_path, stderr=log).wait(timeout=300) == 0
        log.seek(0)
        assert f"(epoch {stopped_at} of 8)" in log.read()  # resumed, not started over
    assert_same_run(straight, out)
    assert not (out / "superseded").exists()


def tiny_sets(config, images, val_images=None):
    """Training and validation sets of a tiny_config run (validation on ``val_images``, default the same)."""
    t = config["train"]
    common = dict(inp_size=t["inp_size"], scale_min=t["scale_min"], scale_max=t["scale_max"], sample_q=t["sample_q"])
    return (
        DownsampledPatches(images, augment=t["augment"], repeat=t["repeat"], seed=t["seed"], **common),
        DownsampledPatches(val_images or images, augment=False, repeat=t["val_repeat"], seed=t["seed"] + 1, **common),
    )


def test_weights_do_not_depend_on_the_number_of_loader_workers(tmp_path):
    """Samples are a pure function of (seed, epoch, index): 0 and 2 worker processes train the same model."""
    images = [torch.round(random_image(80, 90, seed=i) * 255).to(torch.uint8) for i in range(3)]
    config = tiny_config(epochs=2)
    for workers in (0, 2):
        fit(config, *tiny_sets(config, images), tmp_path / f"w{workers}", device="cpu", workers=workers)
    a, b = (read_checkpoint(tmp_path / f"w{w}" / "epoch-last.pth") for w in (0, 2))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [h["loss"] for h in a["train_state"]["history"]] == [h["loss"] for h in b["train_state"]["history"]]
