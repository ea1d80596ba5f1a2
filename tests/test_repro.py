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
    Job,
    ReproError,
    _last_words,
    choose_variants,
    clear_stale_locks,
    estimated_work,
    job_command,
    longest_first,
    plan_slots,
)

VARIANTS = ["liif", "liif-c", "metasr", "bicubic"]


def test_slots_share_the_cores_or_give_each_job_a_gpu():
    cpu = plan_slots("auto", gpus=0, cores=2)
    assert len(cpu) == 2 and all(json.loads(s["LIIF_RUNTIME"]) == {"threads": 1} for s in cpu)
    assert [json.loads(s["LIIF_RUNTIME"])["threads"] for s in plan_slots(2, gpus=0, cores=16)] == [8, 8]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in plan_slots("auto", gpus=4, cores=64)] == ["0", "1", "2", "3"]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in plan_slots(3, gpus=2, cores=64)] == ["0", "1"]  # one per GPU
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


def test_jobs_are_capped_by_the_cores_and_the_variants_before_anything_is_allocated(capsys):
    began = time.monotonic()
    slots = plan_slots("20000000", gpus=0, cores=2, variants=19)
    assert len(slots) == 2 and time.monotonic() - began < 1
    assert "liif repro: --jobs 20000000: capped at 2, one job per core\n" in capsys.readouterr().err
    assert len(plan_slots("auto", gpus=0, cores=16, variants=3)) == 3
    assert [json.loads(s["LIIF_RUNTIME"])["threads"] for s in plan_slots(8, gpus=0, cores=16, variants=2)] == [8, 8]
    assert "one job per variant" in capsys.readouterr().err
    with pytest.raises(ReproError, match="--jobs '1e9': a number of jobs or auto"):
        plan_slots("1e9", gpus=0, cores=2)


def test_a_failed_job_is_named_by_the_stages_own_line(tmp_path):
    reason = "train@broken: train.dataset 'no-such-dataset': not in data.datasets; " + "add it or pick one " * 30
    log = tmp_path / "broken.log"
    log.write_text(
        "Running stage 'train@broken':\n> python stages/train.py --config configs/broken.json --out models/broken\n"
        f"{reason}\nERROR: failed to reproduce 'train@broken': failed to run: python stages/train.py --config "
        "configs/broken.json --data data/prepared --out models/broken, exited with 2\n"
    )
    words = _last_words(log)
    assert words.startswith("train@broken: train.dataset 'no-such-dataset': not in data.datasets;")
    assert words.endswith(" ...") and len(words) <= 404
    assert words[:-4].split()[-1] in {"add", "it", "or", "pick", "one"}  # cut between words, not inside one
    log.write_text("ERROR: unexpected error - dvc.yaml is broken\n")
    assert _last_words(log) == "ERROR: unexpected error - dvc.yaml is broken"


def test_the_status_shows_the_current_epoch_of_a_long_epoch(tmp_path):
    log = tmp_path / "liif.log"
    bar = "".join(
        f"\rliif epoch 4/300:  {i:2d}%|####      | {i}/150 [00:0{i % 10}<00:30, 3.0batch/s]" for i in range(150)
    )
    log.write_text("Running stage 'train@liif':\nliif epoch 3: loss 0.0812 val 30.1 dB lr 1.0e-03 12 s\n" + bar)
    assert log.stat().st_size > 8192
    job = Job(variant="liif", log=log)
    assert job.progress() == "epoch 4/300"
    assert job.progress() == "epoch 4/300"  # nothing new: the last epoch seen
    with open(log, "a") as f:
        f.write("\nliif epoch 4: loss 0.08 val 30.2 dB\n" + bar.replace("epoch 4/300", "epoch 5/300"))
    assert job.progress() == "epoch 5/300"
    with open(log, "a") as f:
        f.write("\nRunning stage 'evaluate@liif':\n")
    assert job.progress() == "evaluating"


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


def test_the_default_studys_variants_are_scheduled_longest_first():
    """Committed configs/ of the default study; the sample suite has 9 training photographs and 273 squares."""
    configs = {p.stem: json.loads(p.read_text()) for p in (Path(__file__).parents[1] / "configs").glob("*.json")}
    work = {
        v: estimated_work(c, train_images=273 if (c["train"] or {}).get("dataset") == "squares" else 9)
        for v, c in configs.items()
    }
    order = longest_first(sorted(configs), work)
    # the report's train times: upsample-x2 301 s and sized-upsample-16-128 289 s are the longest, and the
    # size-varied LIIF and the Bicubic baseline (nothing to train) the shortest
    assert set(order[:2]) == {"upsample-x2", "sized-upsample-16-128"}
    assert order[-4:] == ["sized-upsample-32-64", "sized-liif-32-64", "sized-liif-16-128", "bicubic"]
    assert work["bicubic"] == 0
    assert estimated_work(configs["liif"], train_images=9, finished=True) == 0
    assert longest_first(["a", "b", "c"], {"a": 1.0, "b": 2.0, "c": 1.0}) == ["b", "a", "c"]


def _main(argv: list[str], capsys) -> tuple[int, str]:
    from liif.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_repro_outside_a_repository_without_dvc_or_with_a_broken_params_file_says_so_in_one_line(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, err = _main(["repro"], capsys)
    assert code == 2 and err == f"liif repro: no dvc.yaml in {tmp_path}: run it from the repository root\n"
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, err = _main(["repro"], capsys)
    assert code == 2
    assert err == "liif repro: dvc is not on PATH: activate the project's venv (source .venv/bin/activate)\n"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / "params.yaml").write_text("train:\n  epochs: [1\nmodel: {}\n")
    code, err = _main(["repro"], capsys)
    assert code == 2 and err.count("\n") == 1 and "params.yaml" in err and "Traceback" not in err, err


def test_out_of_memory_blames_tile_and_chunk_only_where_they_exist(monkeypatch, capsys):
    import liif.cli

    def exhausted(args):
        raise MemoryError

    monkeypatch.setattr(liif.cli, "cmd_repro", exhausted)
    assert _main(["repro"], capsys) == (2, "liif: error: out of memory\n")
