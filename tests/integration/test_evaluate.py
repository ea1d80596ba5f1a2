"""The pipeline's evaluation (spec section 4): shipped LR at x2-x4, PIL-downsampled HR crops above,
no silent change of degradation, and no scoring of another variant's weights or of an unfinished training."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from liif.config.variants import config_hash
from liif.models.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def trained_config() -> dict:
    from liif.config.params import load_params
    from liif.config.variants import resolve_variant

    return resolve_variant(load_params(ROOT / "params.yaml"), "liif")


def save_run(model_dir, config: dict, *, epoch: int, summary_hash: str | None):
    """What liif.train.loop leaves: epoch-last.pth at ``epoch`` and, when the run finished, summary.json."""
    from liif.models import build_model

    metadata = {"variant": config["variant"], "config_hash": config_hash(config)}
    save_checkpoint(
        model_dir / "epoch-last.pth",
        model=build_model(config["model"]),
        train_state={"epoch": epoch},
        metadata=metadata,
    )
    if summary_hash:
        (model_dir / "summary.json").write_text(json.dumps({"config_hash": summary_hash, "mlflow_run_id": None}))


@pytest.mark.integration
def test_the_evaluate_stage_writes_no_metrics_for_an_unfinished_training(tmp_path):
    config = trained_config()
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "liif.json").write_text(json.dumps(config))
    save_run(tmp_path / "models" / "liif", config, epoch=21, summary_hash=None)
    command = [sys.executable, str(ROOT / "stages" / "evaluate.py"), "--config", "liif.json", "--data", "prepared"]
    proc = subprocess.run(
        [*command, "--models", "models/liif", "--metrics", "m/liif.json", "--per-image", "m/liif.tsv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"evaluate@liif: models/liif/epoch-last.pth: is at epoch 21 of {config['train']['epochs']}: the training of "
        "liif did not finish, so it is not evaluated; run `dvc repro train@liif` to finish it"
    ]
    assert not (tmp_path / "m").exists()
