"""Data-parallel training (DDP over gloo on CPU, launched by torchrun as the train stage does)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from liif.config.params import ParamsError
from liif.models.checkpoint import read_checkpoint
from liif.train.distributed import launch_command
from liif.train.patches import EpochBatches

WORKER = str(Path(__file__).resolve().parents[1] / "train_worker.py")


def start(out_dir: Path, config_path: Path, nproc: int) -> subprocess.Popen:
    cmd = (
        launch_command(nproc, WORKER, [str(out_dir), str(config_path)])
        if nproc > 1
        else [sys.executable, WORKER, str(out_dir), str(config_path)]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)


def finish(proc: subprocess.Popen):
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]


def weights(out_dir: Path) -> dict:
    return read_checkpoint(out_dir / "epoch-last.pth")["state_dict"]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "config.json"
    path.write_text(json.dumps(tiny_config(epochs=8, batch_size=5, repeat=16)))  # 48 samples: 9 batches of 5, one of 3
    return path


@pytest.fixture(scope="module")
def two_process_run(config_path) -> Path:
    out = config_path.parent / "two"
    finish(start(out, config_path, 2))
    return out


def test_two_processes_train_the_weights_of_one(config_path, two_process_run):
    one = config_path.parent / "one"
    finish(start(one, config_path, 1))
    a, b = weights(one), weights(two_process_run)
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, f"largest weight difference {worst:.2e}"
    history = [read_checkpoint(d / "epoch-last.pth")["train_state"]["history"] for d in (one, two_process_run)]
    for x, y in zip(*history, strict=True):  # the loss is the mean over every rank's share
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
    assert not list(two_process_run.glob(".*.tmp")) and (two_process_run / "history.tsv").is_file()


def test_a_killed_two_process_run_resumes_to_the_same_weights(config_path, two_process_run):
    out = config_path.parent / "killed"
    proc = start(out, config_path, 2)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill the whole process group once epoch 2 of 8 is on disk
        try:
            if read_checkpoint(out / "epoch-last.pth")["train_state"]["epoch"] >= 2:
                break
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_checkpoint(out / "epoch-last.pth")["train_state"]["epoch"] < 8
    finish(start(out, config_path, 2))
    a, b = weights(out), weights(two_process_run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_each_rank_gets_its_share_of_every_global_batch():
    shares = [list(EpochBatches(12, batch_size=5, seed=0, shuffle=True, rank=r, world=2)) for r in (0, 1)]
    whole = list(EpochBatches(12, batch_size=5, seed=0, shuffle=True))
    assert [a + b for a, b in zip(*shares, strict=True)] == whole
    assert [len(s) for s in shares[0]] == [2, 2, 1] and [len(s) for s in shares[1]] == [3, 3, 1]
    with pytest.raises(ParamsError, match="cannot be shared by 4 processes"):
        EpochBatches(13, batch_size=4, seed=0, shuffle=True, rank=0, world=4)


def test_a_rank_that_dies_ends_the_run_instead_of_hanging(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tiny_config(epochs=50, repeat=16)))  # long enough to be killed mid-way
    out = tmp_path / "out"
    proc = start(out, config_path, 2)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "epoch-last.pth").exists():
        time.sleep(0.1)
    ranks = _children(proc.pid)
    assert len(ranks) == 2, ranks
    killed = max(ranks)
    os.kill(killed, signal.SIGKILL)  # one rank dies; the other waits in an all-reduce
    began = time.time()
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # leave no training processes behind (torchrun gives each its own group)
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        raise
    err = err.decode()
    assert time.time() - began < 120
    assert proc.returncode == 1, err[-3000:]  # torchrun's exit status for a failed worker
    # torchrun's failure report names the rank that died and how, not just "failed"
    assert "torch.distributed.elastic.multiprocessing.errors.ChildFailedError" in err, err[-3000:]
    assert f"Signal 9 (SIGKILL) received by PID {killed}" in err, err[-3000:]
    assert re.search(rf"exitcode\s*: -9 \(pid: {killed}\)", err), err[-3000:]
    assert read_checkpoint(out / "epoch-last.pth")["train_state"]["epoch"] < 50


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == pid]


def _parent(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_the_train_stage_relaunches_itself_under_torchrun(tmp_path):
    """runtime.nproc: 2 in params.yaml: stages/train.py starts torchrun with 2 processes, rank 0 writes."""
    from conftest import write_tree

    from liif.config.params import load_params
    from liif.config.variants import resolve_variant
    from liif.data.layout import PreparedData

    root = Path(__file__).resolve().parents[2]
    params = load_params(root / "params.yaml")
    params["runtime"].update(nproc=2, tracking={"enabled": False, "experiment": "t"})
    params["train"].update(epochs=2, batch_size=4, repeat=2, val_images=1, val_repeat=1, inp_size=16)
    params["model"].update(encoder={"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8}, decoder_hidden=[16])
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    write_tree(PreparedData(tmp_path / "prepared"), "sample", {"train": 2, "val": 1})
    (tmp_path / "liif.json").write_text(json.dumps(resolve_variant(params, "liif")))
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "stages" / "train.py"),
            "--config",
            "liif.json",
            "--data",
            "prepared",
            "--out",
            "models/liif",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch.distributed.run" not in proc.stderr and '"epochs": 2' in proc.stderr  # rank 0's summary
    assert read_checkpoint(tmp_path / "models" / "liif" / "epoch-last.pth")["train_state"]["epoch"] == 2
