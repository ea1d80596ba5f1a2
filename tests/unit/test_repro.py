"""``liif repro --jobs N``: the variants side by side through DVC, correct under a failing job and a real kill."""

import json
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import study_params

from liif.config.variants import resolve_variant
from liif.study.repro import (
    Job,
    ReproError,
    _last_words,
    choose_variants,
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


def test_the_default_studys_variants_are_scheduled_longest_first():
    """The default study's recipes (conftest study_params); its sample suite has 9 training photographs and 273
    squares."""
    params = study_params()
    configs = {v: resolve_variant(params, v) for v in params["variants"]}
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
