"""Roles: what each variant is, declared once in params.yaml and never read from a name or into an identity."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from liif.config.params import apply_profile, load_params

ROOT = Path(__file__).resolve().parents[2]


def test_a_renamed_ablation_reaches_the_rq4_table(tmp_path):
    """The report stage itself, on the tiny profile with liif-c renamed: the ablation is found by its role."""
    params = apply_profile(load_params(ROOT / "params.yaml"), yaml.safe_load((ROOT / "profiles/tiny.yaml").read_text()))
    params["variants"]["no-cell-please"] = params["variants"].pop("liif-c")
    params["report"]["figures"] = False
    params["runtime"]["tracking"]["enabled"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    scores = {"liif": 30.0, "liif-seed1": 30.2, "no-cell-please": 29.0, "bicubic": 29.5, "metasr": 30.1, "lte": 30.3}
    for variant, psnr in {**scores, "upsample-x2": 30.4}.items():
        (metrics / f"{variant}.json").write_text(json.dumps({"psnr": {"sample": {"x2": psnr, "x5": psnr - 4}}}))
    for variant, psnr in {"sized-liif-16-64": 25.0, "sized-upsample-16-64": 24.5}.items():
        (metrics / f"{variant}.json").write_text(json.dumps({"psnr": {"squares": {"16-64": psnr}}}))
    command = [
        sys.executable,
        str(ROOT / "stages/report.py"),
        "--metrics",
        "metrics",
        "--models",
        "models",
        "--data",
        "data",
        "--out",
        "reports",
        "--headline",
        "headline.json",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rq4 = (tmp_path / "reports/rq4.md").read_text()
    assert "| no-cell-please (no cell decoding) | -1.10 (worse) |" in rq4.replace("  ", " ")
    assert "cell decoding: helps in-distribution (x2 +1.10)" in rq4
