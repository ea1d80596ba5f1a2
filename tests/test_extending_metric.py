"""A new metric is one module of liif/metrics and one line of params.yaml (docs/extending-metric.md)."""

import json
import sys

import pytest
from conftest import needs_dvc, sh, study_copy

TOY_METRIC = '''"""Mean absolute error on the protocol's crop: a toy metric, the whole of what a new metric needs."""

from liif.metrics import metric
from liif.metrics.protocol import shave_for


@metric("mae", higher_is_better=False, digits=5, shown=4)
def mae(pred, target, *, protocol="none", scale=1, grey=False) -> float:
    diff = (pred.double() - target.double()).abs()
    shave = shave_for(protocol, scale)
    return (diff[..., shave:-shave, shave:-shave] if shave else diff).mean().item()
'''


@pytest.mark.integration
@needs_dvc
def test_a_new_metric_is_one_module_and_one_params_line(tmp_path, monkeypatch):
    """docs/extending-metric.md: liif/metrics/mae.py and `mae` in eval.metrics; dvc repro of one
    evaluate stage writes its means beside PSNR's and its TSV column, and the report's loader reads them."""
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    monkeypatch.setenv("PYTHONPATH", str(repo))  # the copy's liif/, not the editable install's checkout
    (repo / "liif" / "metrics" / "mae.py").write_text(TOY_METRIC)
    params = (repo / "params.yaml").read_text()
    assert params.count("  metrics: [psnr, ssim]") == 1
    (repo / "params.yaml").write_text(params.replace("  metrics: [psnr, ssim]", "  metrics: [psnr, ssim, mae]"))
    touched = sh("git", "status", "--porcelain", "--", "liif", "stages", "dvc.yaml", "tests", "params.yaml", cwd=repo)
    assert sorted(touched.splitlines()) == [" M params.yaml", "?? liif/metrics/mae.py"]

    sh("dvc", "repro", "evaluate@bicubic", cwd=repo)
    means = json.loads((repo / "metrics" / "eval" / "bicubic.json").read_text())
    assert list(means) == ["psnr", "ssim", "mae"] and set(means["mae"]["sample"]) == {"x2", "x5"}
    assert 0 < means["mae"]["sample"]["x2"] < means["mae"]["sample"]["x5"] < 0.5  # a larger scale errs more
    header, *rows = (repo / "metrics" / "eval" / "bicubic.tsv").read_text().splitlines()
    assert header.split("\t") == ["dataset", "scale", "image", "psnr", "ssim", "mae"] and len(rows) == 2
    shown = sh("dvc", "metrics", "show", "--json", cwd=repo)
    assert '"mae"' in shown
    read = "from pathlib import Path; from liif.study.report import load_scores; "
    read += "print(load_scores(Path('metrics/eval'), ['bicubic']).to_json(orient='records'))"
    [x2, x5] = json.loads(sh(sys.executable, "-c", read, cwd=repo))
    assert (x2["scale"], x2["mae"], x5["psnr"]) == (2, means["mae"]["sample"]["x2"], means["psnr"]["sample"]["x5"])
