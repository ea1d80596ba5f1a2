"""LTE trains and is scored through the pipeline like LIIF: a variant of the tiny study naming ``model.name: lte``
runs ``dvc repro evaluate@lte`` on LIIF's patches and recipe, and its checkpoint renders through ``liif upscale``."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import needs_dvc, sh, study_copy

from liif.config.params import dump_yaml, load_params, read_yaml
from liif.config.variants import resolve_variant
from liif.models.checkpoint import load_checkpoint
from liif.models.lte import LTE

pytestmark = [pytest.mark.integration, needs_dvc]

LTE_VARIANT = {"role": "other", "model": {"name": "lte", "hidden_dim": 16, "decoder_hidden": [16, 16]}}


def test_an_lte_variant_trains_and_scores_through_dvc(tmp_path):
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    params = read_yaml(repo / "params.yaml")
    params["variants"]["lte"] = LTE_VARIANT
    (repo / "params.yaml").write_text(dump_yaml(params))
    sh("dvc", "repro", "evaluate@lte", cwd=repo)

    config = json.loads((repo / "configs/lte.json").read_text())
    assert config["model"] == {
        "name": "lte",
        "args": {
            "encoder": params["model"]["encoder"],  # the base's encoder
            "hidden_dim": 16,
            "decoder_hidden": [16, 16],
            "render_scale_max": 4,
        },
    }
    assert config["train"]["patches"] == "downsampled"
    assert config["train"] == resolve_variant(load_params(repo / "params.yaml"), "liif")["train"]  # LIIF's recipe
    model, _ = load_checkpoint(repo / "models/lte/epoch-last.pth")
    assert isinstance(model, LTE)
    scores = json.loads((repo / "metrics/eval/lte.json").read_text())["psnr"]["sample"]
    assert set(scores) == {"x2", "x5"} and all(10 < value < 60 for value in scores.values())

    image = sorted((repo / "data/prepared/sample/test/HR").iterdir())[0]
    out = tmp_path / "up.npy"
    argv = ["upscale", image, "-o", out, "--scale", "1.5", "--checkpoint", repo / "models/lte/epoch-last.pth"]
    proc = subprocess.run([sys.executable, "-m", "liif.cli", *map(str, argv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(np.load(out)).all()
