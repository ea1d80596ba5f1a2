"""The pipeline's evaluation (spec section 4): shipped LR at x2-x4, PIL-downsampled HR crops above,
no silent change of degradation, and no scoring of another variant's weights or of an unfinished training."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import save_run

ROOT = Path(__file__).resolve().parents[2]


def trained_config() -> dict:
    from liif.config.params import load_params
    from liif.config.variants import resolve_variant

    return resolve_variant(load_params(ROOT / "params.yaml"), "liif")


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
