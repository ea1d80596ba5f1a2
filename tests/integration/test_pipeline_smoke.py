"""The paper pipeline before renting GPUs: ``dvc repro`` of profiles/paper.yaml + profiles/paper-smoke.yaml.

Every paper variant (T1-T5, RDN at its true 22 M parameters included) trains two steps and is evaluated
on the paper's datasets and scales, stood in for by offline photographs. Slow for a unit test (minutes),
so it is opt-in locally (``-m slow``) and run by CI (``.ci/run``).
"""

import json

import pytest
import yaml
from conftest import needs_dvc, sh, study_copy

from liif.config.params import dump_yaml, read_yaml
from liif.models.checkpoint import count_parameters, load_checkpoint
from liif.protocol import PROTOCOL_SCALES

pytestmark = [needs_dvc, pytest.mark.slow]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The paper profile without its released-weights variants: they download the authors' files (18 and 256 MB),
    which CI cannot reach (tests/integration/test_released.py scores the same format from a local server)."""
    dest = study_copy(tmp_path_factory.mktemp("smoke") / "repo", "profiles/paper.yaml", "profiles/paper-smoke.yaml")
    params = read_yaml(dest / "params.yaml")
    released = {name for name, v in params["variants"].items() if "checkpoint" in (v or {})}
    assert released == {"liif-released", "rdn-liif-released"}
    params["variants"] = {name: v for name, v in params["variants"].items() if name not in released}
    (dest / "params.yaml").write_text(dump_yaml(params))
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "no downloads", cwd=dest)
    sh("dvc", "repro", cwd=dest)
    return dest


def test_every_paper_variant_trains_and_is_evaluated_at_every_scale(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for variant, overrides in params["variants"].items():
        metrics = json.loads((repo / "metrics" / "eval" / f"{variant}.json").read_text())["psnr"]
        task = (overrides.get("train") or {}).get("task")
        if task:
            assert list(metrics) == ["celeba"] and list(metrics["celeba"]) == [f"{task[0]}-{task[1]}"]
            continue
        for dataset, spec in params["eval"]["datasets"].items():
            scales = spec.get("scales", PROTOCOL_SCALES[spec["protocol"]])  # the paper profile: the protocol's scales
            assert list(metrics[dataset]) == [f"x{s}" for s in scales], (variant, dataset)
        if variant != "bicubic":
            history = (repo / "models" / variant / "history.tsv").read_text().splitlines()
            assert len(history) == 2  # header and one epoch of two steps
    rdn, _ = load_checkpoint(repo / "models" / "rdn-liif" / "epoch-last.pth")
    assert round(count_parameters(rdn.encoder) / 1e6, 2) == 21.97
    report = (repo / "reports" / "README.md").read_text()
    assert "PSNR on the `div2k-valid` test set" in report and "paper-smoke" in report
    assert "## CelebA-HQ against T5" in (repo / "reports" / "paper.md").read_text()
    assert "T1/T3/T4 (DIV2K" in (repo / "reports" / "paper.md").read_text()
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)
