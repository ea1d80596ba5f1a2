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
    variants = ["bicubic", "liif", "liif-c", "liif-seed1", "metasr", "upsample-x2"]
    tasks = ["sized-liif-16-64", "sized-upsample-16-64"]
    assert sorted(metrics(repo)) == sorted(variants + tasks)
    for v in variants:
        assert set(metrics(repo)[v]["sample"]) == {"x2", "x5"}
        assert (repo / "models" / v / "epoch-last.pth").is_file()
    assert set(metrics(repo)["sized-liif-16-64"]) == {"squares"}  # RQ3 on tiles of the sample photographs
    assert (repo / "models" / "liif" / "epoch-best.pth").is_file()
    reports = repo / "reports"
    readme = (reports / "README.md").read_text()
    assert "| liif " in readme and "(2 seeds)" in readme and "](rq4.md)" in readme
    for page in ("rq1", "rq2", "rq3", "rq4", "rq5", "paper"):
        assert (reports / f"{page}.md").stat().st_size > 300
    for figure in (
        "psnr_vs_scale_sample",
        "rq1_textures_x4",
        "rq2_scales",
        "rq2_zoom",
        "rq3_samples",
        "rq4_cell",
        "rq4_ablations_sample",
        "training",
    ):
        assert (reports / "figures" / f"{figure}.png").stat().st_size > 5000, figure
    runs = mlflow_runs(repo)
    assert sorted(runs["tags.variant"]) == sorted(variants + tasks + ["report"])
    report_run = runs[runs["tags.variant"] == "report"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == report_run["run_id"]]
    assert sorted(children["tags.variant"]) == sorted(variants + tasks)  # one child run per variant
    liif = runs[runs["tags.variant"] == "liif"].iloc[0]
    assert liif["params.model.args.cell_decode"] == "True"
    assert liif["metrics.psnr/sample/x2"] == pytest.approx(metrics(repo)["liif"]["sample"]["x2"])
    assert liif["tags.git_revision"] != "unknown"
    assert "val_psnr" in [c.split(".", 1)[1] for c in runs.columns if c.startswith("metrics.")]
    import mlflow

    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(report_run["run_id"], "tables")}
    assert "tables/psnr_sample.json" in artifacts and "tables/liif_vs_bicubic_sample.json" in artifacts
    headline = json.loads((repo / "metrics" / "headline.json").read_text())
    assert headline["liif_x2"] == pytest.approx(
        (metrics(repo)["liif"]["sample"]["x2"] + metrics(repo)["liif-seed1"]["sample"]["x2"]) / 2, abs=1e-3
    )
    out = sh("dvc", "exp", "show", "--md", "--no-pager", "--drop", ".*", "--keep", "Experiment|liif_x|vs_", cwd=repo)
    header = [c.strip() for c in out.splitlines()[0].split("|")[1:-1]]
    assert header == [
        "Experiment",
        "liif_x2",
        "vs_bicubic_x2",
        "vs_metasr_x2",
        "liif_x5",
        "vs_bicubic_x5",
        "vs_metasr_x5",
    ]
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=repo))
    psnr = plots["data"]["reports/plots/psnr/sample.csv"][0]["content"]["data"]["values"]
    assert {row["variant"] for row in psnr} == set(variants)  # no variant named in dvc.yaml, all plotted
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
    assert stale == {"prepare", "report"} | {f"{s}@{v}" for s in ("train", "evaluate") for v in variants}
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
    assert (runs["tags.variant"] == "liif").sum() == 2 and (runs["tags.variant"] == "report").sum() == 2
    assert "liif" in sh("dvc", "exp", "show", "--md", "--no-pager", cwd=repo)
