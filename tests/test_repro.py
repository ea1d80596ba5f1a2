"""``liif repro --jobs N``: the variants side by side through DVC, correct under a failing job and a real kill."""

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

from liif.repro import ReproError, choose_variants, job_command, plan_slots

VARIANTS = ["liif", "liif-c", "metasr", "bicubic"]


def test_slots_share_the_cores_or_give_each_job_a_gpu():
    cpu = plan_slots("auto", gpus=0, cores=2)
    assert len(cpu) == 2 and all(json.loads(s["LIIF_RUNTIME"]) == {"threads": 1} for s in cpu)
    assert [json.loads(s["LIIF_RUNTIME"])["threads"] for s in plan_slots(2, gpus=0, cores=16)] == [8, 8]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in plan_slots("auto", gpus=4, cores=64)] == ["0", "1", "2", "3"]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in plan_slots(3, gpus=2, cores=64)] == ["0", "1", "0"]
    with pytest.raises(ReproError, match="--jobs 0: at least 1"):
        plan_slots(0, gpus=0, cores=2)
    with pytest.raises(ReproError, match="--jobs 'many'"):
        plan_slots("many", gpus=0, cores=2)


def test_names_choose_variants_and_the_report_runs_only_for_the_whole_study():
    assert choose_variants(VARIANTS, []) == (VARIANTS, True)
    assert choose_variants(VARIANTS, ["train@liif-c", "evaluate@liif-c", "metasr"]) == (["liif-c", "metasr"], False)
    assert choose_variants(VARIANTS, ["liif", "report"]) == (["liif"], True)
    with pytest.raises(ReproError, match="liif-x9: not a variant of params.yaml"):
        choose_variants(VARIANTS, ["liif-x9"])
    assert job_command("liif") == ["dvc", "--wait-for-lock", "repro", "--single-item", "train@liif", "evaluate@liif"]


def _liif(repo: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "liif.cli", "repro", *args]
    return subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


@needs_dvc
def test_a_failing_job_and_a_killed_run(tmp_path):
    """Two jobs at a time on the tiny profile (longer training, so the kill lands mid-epoch) plus a variant whose
    training data does not exist: the kill stops every job, the rerun resumes the interrupted trainings from
    their epoch-last.pth, the broken variant fails alone and is named, and DVC's view is clean afterwards."""
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 40
    params["variants"]["broken"] = {"role": "other", "train": {"dataset": "no-such-dataset"}}
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
    os.killpg(first.pid, signal.SIGKILL)  # the whole command, its DVC processes and their trainings
    first.wait(timeout=60)
    assert not (repo / "metrics" / "eval" / "liif.json").exists()
    killed_at = {v: _last_epoch((logs / f"{v}.log").read_text()) for v in names[:2]}
    interrupted = {v: epoch for v, epoch in killed_at.items() if epoch < 40}  # one may have finished already
    assert interrupted, killed_at

    second = _liif(repo, "--jobs", "2", *names)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 1, out
    assert "liif repro: broken failed (exit" in out and "full log: logs/repro/broken.log" in out
    assert "1 of 3 variants failed" in out
    for variant in names[:2]:
        log = (logs / f"{variant}.log").read_text()
        assert "epoch 1:" not in log  # resumed, not retrained
        if variant not in interrupted:
            continue
        # an epoch's checkpoint is saved before its line is printed: a kill in between resumes one epoch later
        resumed = re.search(rf"resuming {variant} from \S+ \(epoch (\d+) of 40\)", log)
        assert resumed and int(resumed[1]) in (killed_at[variant], killed_at[variant] + 1), log[-2000:]
        assert f"{variant} epoch {int(resumed[1]) + 1}:" in log
        assert json.loads((repo / "metrics" / "eval" / f"{variant}.json").read_text())["sample"]["x2"] > 0
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
