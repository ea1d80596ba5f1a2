"""One training per model folder: the second refuses in one line naming the holder; a dead holder's lock is free."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, needs_dvc, sh, study_copy

from liif.files import HELD_ENV, FolderLockedError, lock_path, model_folder_lock

HOLD = "import sys, time; from liif.files import model_folder_lock\nwith model_folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"


def _holder(folder: Path, **kwargs) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, cwd=ROOT, **kwargs
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_training_of_a_folder_is_refused_and_a_killed_holders_lock_is_free(tmp_path):
    folder = tmp_path / "models" / "liif"
    holder = _holder(folder)
    try:
        assert lock_path(folder) == tmp_path / "models" / "liif.lock"  # beside the DVC output, not inside it
        with pytest.raises(FolderLockedError) as refused:
            with model_folder_lock(folder):
                pytest.fail("two trainings hold one folder")
        message = str(refused.value)
        assert message.startswith(f"{folder} is being trained by PID {holder.pid} on {socket.gethostname()} (started ")
        assert message.endswith("); stop it or wait") and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder: the kernel drops its flock
        holder.wait()
    with model_folder_lock(folder) as path:
        assert f'"pid": {os.getpid()}' in path.read_text()
    assert not folder.exists()  # taking the lock touches nothing inside the folder


@needs_dvc
@pytest.mark.integration
def test_the_train_stage_refuses_a_folder_another_training_holds(tmp_path):
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    sh("dvc", "repro", "configure@liif", cwd=repo)
    holder = _holder(repo / "models" / "liif")
    try:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        began = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "stages/train.py", "--config", "configs/liif.json", "--data", "data/prepared"]
            + ["--out", "models/liif"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"train@liif: models/liif is being trained by PID {holder.pid} on ")
    assert proc.stderr.endswith("; stop it or wait\n") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (repo / "models" / "liif").exists() and time.monotonic() - began < 60


def test_the_processes_a_holder_launches_share_its_lock(tmp_path, monkeypatch):
    """The train stage's torchrun launcher holds the folder's lock; its ranks (told through the environment) do not
    take it again, while any other process is still refused."""
    folder = tmp_path / "models" / "liif"
    holder = _holder(folder)
    try:
        monkeypatch.setenv(HELD_ENV, str(lock_path(folder).resolve()))
        with model_folder_lock(folder):
            pass
        monkeypatch.setenv(HELD_ENV, str(lock_path(tmp_path / "models" / "other").resolve()))
        with pytest.raises(FolderLockedError, match=f"PID {holder.pid} "):
            with model_folder_lock(folder):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_link_to_a_held_folder_is_the_same_folder(tmp_path):
    folder = tmp_path / "models" / "liif"
    folder.mkdir(parents=True)
    (tmp_path / "link").symlink_to(folder)
    holder = _holder(folder)
    try:
        for alias in (tmp_path / "link", tmp_path / "models" / "." / "liif"):
            with pytest.raises(FolderLockedError):
                with model_folder_lock(alias):
                    pytest.fail(f"{alias} trained beside {folder}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
