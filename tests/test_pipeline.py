"""End to end: the real ``dvc repro`` on the tiny profile in a temporary copy of the repository,
then ``dvc exp run -S model.cell_decode=false``, checking outputs, MLflow runs and what re-ran."""

import json

import pytest
import yaml
from conftest import mlflow_runs, needs_dvc, sh, study_copy

pytestmark = needs_dvc


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dest = study_copy(tmp_path_factory.mktemp("e2e") / "repo", "profiles/tiny.yaml")
    sh("dvc", "repro", cwd=dest)
    return dest


def metrics(repo):
    return {p.stem: json.loads(p.read_text()) for p in (repo / "metrics" / "eval").glob("*.json")}


def test_repro_writes_models_metrics_report_and_runs(repo):
    variants = ["bicubic", "liif", "liif-c", "metasr", "upsample-x2"]
    assert sorted(metrics(repo)) == variants
    for v in variants:
        assert set(metrics(repo)[v]["sample"]) == {"x2", "x5"}
        assert (repo / "models" / v / "epoch-last.pth").is_file()
    assert (repo / "models" / "liif" / "epoch-best.pth").is_file()
    report = (repo / "reports" / "README.md").read_text()
    assert "| liif |" in report and "T3" in report
    assert (repo / "reports" / "figures" / "psnr_vs_scale_sample.png").stat().st_size > 1000
    runs = mlflow_runs(repo)
    assert sorted(runs["tags.variant"]) == variants
    liif = runs[runs["tags.variant"] == "liif"].iloc[0]
    assert liif["params.model.args.cell_decode"] == "True"
    assert liif["metrics.sample_x2"] == pytest.approx(metrics(repo)["liif"]["sample"]["x2"])
    assert liif["tags.git_revision"] != "unknown"
    assert "val_psnr" in [c.split(".", 1)[1] for c in runs.columns if c.startswith("metrics.")]
    out = sh("dvc", "exp", "show", "--md", "--no-pager", cwd=repo)
    assert "liif.json" in out and "sample.x2" in out
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)


def test_runtime_settings_retrain_nothing_and_code_edits_rerun_their_stages(repo):
    checkpoints = {p: p.stat().st_mtime_ns for p in (repo / "models").rglob("*.pth")}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["runtime"].update(threads=1, device="cpu", save_every=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)
    assert "Running stage" not in sh("dvc", "repro", cwd=repo)
    assert checkpoints == {p: p.stat().st_mtime_ns for p in (repo / "models").rglob("*.pth")}  # nothing touched
    sh("git", "checkout", "params.yaml", cwd=repo)

    resize = repo / "liif" / "resize.py"
    original = resize.read_text()
    resize.write_text(original.replace("def pil_bicubic(", "def pil_bicubic(  # edited\n", 1))
    status = sh("dvc", "status", "--json", cwd=repo)
    stale = set(json.loads(status))
    variants = {p.stem for p in (repo / "configs").glob("*.json")}
    assert stale == {"prepare"} | {f"{s}@{v}" for s in ("train", "evaluate") for v in variants}
    resize.write_text(original)
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)


def test_exp_run_override_retrains_only_what_depends_on_it(repo):
    before = metrics(repo)
    out = sh("dvc", "exp", "run", "-S", "model.cell_decode=false", cwd=repo)
    after = metrics(repo)
    assert json.loads((repo / "configs" / "liif.json").read_text())["model"]["args"]["cell_decode"] is False
    assert after["liif"] != before["liif"]  # retrained without cell decoding
    assert "Running stage 'train@liif'" in out
    for v in ("liif-c", "metasr", "bicubic", "upsample-x2"):  # their resolved configuration did not change
        assert after[v] == before[v]
        assert f"Running stage 'train@{v}'" not in out and f"Running stage 'evaluate@{v}'" not in out
    runs = mlflow_runs(repo)
    assert (runs["tags.variant"] == "liif").sum() == 2
    assert "liif" in sh("dvc", "exp", "show", "--md", "--no-pager", cwd=repo)
