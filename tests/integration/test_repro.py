"""``liif repro --jobs N``: the variants side by side through DVC, correct under a failing job and a real kill."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import needs_dvc, sh, study_copy

from liif.study.repro import (
    clear_stale_locks,
)


def _env(repo: Path) -> dict:
    """The venv's tools first on PATH; the copy's own ``liif`` imported, so its code is what ran before a kill."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(repo),
    }


def _liif(repo: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = _env(repo)
    command = [sys.executable, "-m", "liif.cli", "repro", *args]
    return subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


EPOCHS = 300  # long enough that the kill lands mid-training (tiny epochs take tens of milliseconds)


def _argument(pid: int, name: str) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return argv[argv.index(name) + 1]


def _trainings(repo: Path) -> list[int]:
    """PIDs of the Python processes running ``stages/train.py`` in ``repo``, however they were started (the shell
    DVC starts them through carries the whole command as one argument, so it is not one of them)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
            if b"stages/train.py" in argv and b"--out" in argv:
                if Path(os.readlink(proc / "cwd")) == repo:
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


@needs_dvc
@pytest.mark.integration
def test_a_failing_job_and_a_killed_run(tmp_path):
    """Two jobs at a time on the tiny profile (longer training, so the kill lands mid-epoch) plus a variant whose
    training data does not exist: a second training of a running variant's folder is refused, ``kill -TERM`` of
    the command stops every job with its training, the rerun resumes the interrupted trainings from their
    epoch-last.pth, the broken variant fails alone and is named by its own error line, and DVC's view is clean
    afterwards."""
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = EPOCHS
    # passes configure, fails in its training: LR patches larger than the sample suite's x2 LR images
    params["variants"]["broken"] = {
        "role": "other",
        "model": {"name": "fixed-scale", "scale": 2},
        "train": {"inp_size": 400},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "longer, and a broken variant", cwd=repo)
    names = ["liif", "liif-c", "broken"]

    first = _liif(repo, "--jobs", "2", *names, start_new_session=True)
    deadline = time.monotonic() + 300
    logs = repo / "logs" / "repro"
    while time.monotonic() < deadline:  # kill once both trainings are past their second epoch
        texts = [
            (logs / f"{v}.log").read_text(errors="replace") if (logs / f"{v}.log").is_file() else "" for v in names[:2]
        ]
        if all("epoch 2:" in t for t in texts):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the two trainings never reached epoch 2")
    running = _trainings(repo)
    assert running, "no training left to interrupt"
    out_dir = _argument(running[0], "--out")
    variant = Path(out_dir).name
    try:
        second_training = subprocess.run(
            [sys.executable, "stages/train.py", "--config", f"configs/{variant}.json", "--data", "data/prepared"]
            + ["--out", out_dir],
            cwd=repo,
            env=_env(repo),
            capture_output=True,
            text=True,
        )
        assert second_training.returncode == 2, second_training.stderr
        assert re.fullmatch(
            rf"train@{variant}: {out_dir} is being trained by PID {running[0]} on \S+ \(started [\d: -]+\); stop it or wait\n",
            second_training.stderr,
        ), second_training.stderr
        first.send_signal(signal.SIGTERM)  # the command only, as `kill` does: it stops its jobs' process groups
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 130, out
        assert "liif repro: stopped; run it again" in out
        assert _trainings(repo) == [], out
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        for pid in _trainings(repo):
            os.kill(pid, signal.SIGKILL)
    assert not (repo / "metrics" / "eval" / "liif.json").exists()
    killed_at = {v: _last_epoch((logs / f"{v}.log").read_text()) for v in names[:2]}
    interrupted = {v: epoch for v, epoch in killed_at.items() if epoch < EPOCHS}  # one may have finished already
    assert interrupted, killed_at

    second = _liif(repo, "--jobs", "2", *names)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 1, out
    assert re.search(r"liif repro: broken failed \(exit \d+\): train@broken: \S", out), out  # the stage's reason
    assert "full log: logs/repro/broken.log" in out
    assert "1 of 3 variants failed" in out
    for variant in names[:2]:
        log = (logs / f"{variant}.log").read_text()
        assert "epoch 1:" not in log  # resumed, not retrained
        if variant not in interrupted:
            continue
        # an epoch's checkpoint is saved before its line is printed: a kill in between resumes one epoch later
        resumed = re.search(rf"resuming {variant} from \S+ \(epoch (\d+) of {EPOCHS}\)", log)
        assert resumed and int(resumed[1]) in (killed_at[variant], killed_at[variant] + 1), log[-2000:]
        assert f"{variant} epoch {int(resumed[1]) + 1}:" in log
        assert json.loads((repo / "metrics" / "eval" / f"{variant}.json").read_text())["psnr"]["sample"]["x2"] > 0
    status = sh("dvc", "status", cwd=repo)
    changed = {line.strip().rstrip(":") for line in status.splitlines() if line and not line.startswith("\t")}
    assert {"train@liif", "evaluate@liif", "train@liif-c", "evaluate@liif-c"}.isdisjoint(changed), status
    assert "train@broken" in changed


def _last_epoch(log: str) -> int:
    epochs = [
        int(line.split(" epoch ")[1].split(":")[0])
        for line in log.splitlines()
        if " epoch " in line and ": loss" in line
    ]
    return max(epochs)


def test_stale_dvc_lock_entries_are_dropped_only_under_dvcs_own_guard(tmp_path):
    import zc.lockfile

    rwlock = tmp_path / "rwlock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    table = {"write": {"data/prepared": {"pid": dead.pid, "cmd": "dvc repro"}}, "read": {}}
    table["read"]["configs/liif.json"] = [{"pid": os.getpid(), "cmd": "dvc repro"}]
    rwlock.write_text(json.dumps(table))
    guard = zc.lockfile.LockFile(str(tmp_path / "rwlock.lock"))  # a DVC process editing the file right now
    try:
        assert clear_stale_locks(rwlock) == 0
        assert json.loads(rwlock.read_text()) == table
    finally:
        guard.close()
    assert clear_stale_locks(rwlock) == 1
    assert json.loads(rwlock.read_text()) == {"write": {}, "read": table["read"]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
