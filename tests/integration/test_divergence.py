"""A run that diverges fails loudly: it stops at the epoch that diverged without saving it (``epoch-last.pth``
stays the last good epoch), leaves ``diverged.json`` so evaluation refuses the model, ends its MLflow run
FAILED, and the train stage exits with one line saying what to change. Healthy curves never trigger it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import saved_epoch, tiny_config, write_tree

from liif.config.variants import config_hash
from liif.eval.scores import diverged, evaluate_variant
from liif.models.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[2]


def test_the_train_stage_exits_2_with_one_line_and_evaluation_refuses_the_model(tmp_path):
    """lr 10 explodes in the first epoch: nothing is saved, the stage says why in one line, and evaluating
    the variant is refused with how to fix it."""
    from liif.config.params import load_params
    from liif.config.variants import resolve_variant
    from liif.data.layout import PreparedData

    params = load_params(ROOT / "params.yaml")
    params["runtime"].update(nproc=1, tracking={"enabled": False, "experiment": "t"})
    params["train"].update(epochs=2, batch_size=4, repeat=8, val_images=1, val_repeat=1, inp_size=16)
    params["model"].update(encoder={"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8}, decoder_hidden=[16])
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    write_tree(PreparedData(tmp_path / "prepared"), "sample", {"train": 2, "val": 1})
    config = resolve_variant(params, "liif")
    config["train"]["lr"] = 10.0  # past the schema's range (which params.yaml would refuse): a sure explosion
    (tmp_path / "liif.json").write_text(json.dumps(config))
    command = [sys.executable, str(ROOT / "stages" / "train.py"), "--config", "liif.json", "--data", "prepared"]
    proc = subprocess.run(
        [*command, "--out", "models/liif"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if line.startswith("train:")]
    assert len(said) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert said[0].startswith("train: liif diverged at epoch 1: loss "), said[0]
    assert "lower train.lr (now 10)" in said[0] and said[0].endswith("(no epoch was saved)")
    model_dir = tmp_path / "models" / "liif"
    assert not list(model_dir.glob("*.pth")) and diverged(model_dir, config_hash(config))["epoch"] == 1

    evaluation = {"checkpoint": "epoch-last.pth", "datasets": {"sample": {"protocol": "div2k", "scales": [2]}}}
    with pytest.raises(CheckpointError) as refused:
        evaluate_variant(
            config, model_dir=model_dir, prepared=PreparedData(tmp_path / "prepared"), evaluation=evaluation
        )
    assert "\n" not in str(refused.value)
    assert "the training of liif diverged at epoch 1" in str(refused.value)
    assert "lower train.lr (now 10)" in str(refused.value) and "rerun `dvc repro train@liif`" in str(refused.value)


def test_every_rank_of_a_distributed_run_stops_together(tmp_path):
    """Under torchrun the ranks see the same all-reduced loss and stop at the same epoch, none left waiting."""
    from liif.train.distributed import launch_command

    config = tiny_config(epochs=4, batch_size=4, repeat=8, milestones=[1], gamma=1000.0)  # lr 1 from epoch 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    worker = str(Path(__file__).resolve().parents[1] / "train_worker.py")
    proc = subprocess.run(
        launch_command(2, worker, [str(tmp_path / "out"), str(tmp_path / "config.json")]),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    assert proc.stderr.count("DivergedError: tiny diverged at epoch 2") == 2, proc.stderr[-3000:]  # both ranks
    assert saved_epoch(tmp_path / "out" / "epoch-last.pth") == 1
    assert diverged(tmp_path / "out", config_hash(config))["epoch"] == 2
