"""End to end: the real ``dvc repro`` on the tiny profile in a temporary copy of the repository,
then ``dvc exp run -S model.cell_decode=false``, checking outputs, MLflow runs and what re-ran."""

import json

import numpy as np
import pytest
import yaml
from conftest import mlflow_runs, needs_dvc, sh, study_copy
from PIL import Image

pytestmark = needs_dvc


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dest = study_copy(tmp_path_factory.mktemp("e2e") / "repo", "profiles/tiny.yaml")
    sh("dvc", "repro", cwd=dest)
    return dest


def metrics(repo, metric: str = "psnr"):
    return {p.stem: json.loads(p.read_text())[metric] for p in (repo / "metrics" / "eval").glob("*.json")}


def test_repro_writes_models_metrics_report_and_runs(repo):
    variants = ["bicubic", "liif", "liif-c", "liif-seed1", "lte", "metasr", "upsample-x2"]
    tasks = ["sized-liif-16-64", "sized-upsample-16-64"]
    assert sorted(metrics(repo)) == sorted(variants + tasks)
    for v in variants:
        assert set(metrics(repo)[v]["sample"]) == {"x2", "x5"}
        assert (repo / "models" / v / "epoch-last.pth").is_file()
    assert set(metrics(repo)["sized-liif-16-64"]) == {"squares"}  # RQ3 on tiles of the sample photographs
    assert (repo / "models" / "liif" / "epoch-best.pth").is_file()
    reports = repo / "reports"
    m = {v: metrics(repo)[v]["sample"] for v in variants}
    pair = {x: (m["liif"][x], m["liif-seed1"][x]) for x in ("x2", "x5")}
    liif = {x: (a + b) / 2 for x, (a, b) in pair.items()}  # LIIF is the mean over its seeds
    sd = {x: abs(a - b) / 2**0.5 for x, (a, b) in pair.items()}  # their sample standard deviation
    rows = {  # every markdown table row of every page, as its stripped cells
        page: [[c.strip() for c in line.split("|")[1:-1]] for line in (reports / f"{page}.md").read_text().splitlines()]
        for page in ("README", "rq1", "rq2", "rq3", "rq4", "rq5", "paper")
    }
    rows = {page: [r for r in page_rows if r] for page, page_rows in rows.items()}
    readme = (reports / "README.md").read_text()
    assert "](rq4.md)" in readme
    assert ["liif", *(f"{liif[x]:.2f} ± {sd[x]:.2f} (2 seeds)" for x in ("x2", "x5"))] in rows["README"]
    for v in ("bicubic", "metasr", "liif-c", "upsample-x2"):
        assert [v, f"{m[v]['x2']:.2f}", f"{m[v]['x5']:.2f}"] in rows["README"], v

    def compared(x: str, other: float) -> list[str]:  # scale, LIIF, the other, LIIF minus, 2 x seed sd
        return [x, f"{liif[x]:.2f}", f"{other:.2f}", f"{liif[x] - other:.2f}", f"{2 * sd[x]:.2f}"]

    assert compared("x2", m["bicubic"]["x2"]) in [r[:5] for r in rows["rq1"]]  # RQ1: in-distribution
    for other in ("bicubic", "metasr"):  # RQ2: out of distribution
        assert compared("x5", m[other]["x5"]) in [r[:5] for r in rows["rq2"]], other
    assert compared("x2", m["upsample-x2"]["x2"]) in [r[:5] for r in rows["rq5"]]  # RQ5: at its own scale
    assert compared("x5", m["metasr"]["x5"]) in [r[:5] for r in rows["rq5"]]
    lte = [[x, f"{liif[x]:.2f}", f"{m['lte'][x]:.2f}", f"{m['lte'][x] - liif[x]:.2f}"] for x in ("x2", "x5")]
    assert all(row in [r[:4] for r in rows["rq5"]] for row in lte)  # RQ5: LTE minus LIIF, each part
    assert "`lte`: beyond x4, LTE decodes every output pixel with the cell of an x4 query" in (
        (reports / "rq5.md").read_text()
    )
    ablation = next(r for r in rows["rq4"] if r[0].startswith("liif-c"))
    assert [c.split()[0] for c in ablation[1:]] == [f"{m['liif-c'][x] - liif[x]:+.2f}" for x in ("x2", "x5")]
    sized = {v: metrics(repo)[v]["squares"]["16-64"] for v in tasks}
    up, native = sized["sized-upsample-16-64"], sized["sized-liif-16-64"]
    assert ["squares", "16-64", f"{up:.2f}", f"{native:.2f}", f"{native - up:.2f}"] in [r[:5] for r in rows["rq3"]]
    # beside the paper: ours and the paper's T1/T3 differences from LIIF at x2 (spec section 1)
    paper_minus_liif = {"bicubic": 31.01 - 34.67, "liif-c": 34.53 - 34.67, "metasr": 34.64 - 34.67}
    paper_minus_liif["upsample-x2"] = 34.55 - 34.67  # EDSR-baseline
    paper_minus_liif["lte"] = 34.72 - 34.67  # LTE's published T1 row
    for v, theirs in paper_minus_liif.items():
        assert [v, "x2", f"{m[v]['x2'] - liif['x2']:.2f}", f"{theirs:.2f}"] in rows["paper"], v
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
        with Image.open(reports / "figures" / f"{figure}.png") as image:  # a whole PNG with something drawn
            assert image.format == "PNG" and min(image.size) >= 200, (figure, image.size)
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        assert pixels.std() > 10 and len(np.unique(pixels, axis=0)) > 500, figure
        assert f"](figures/{figure}.png)" in "".join((reports / f"{page}.md").read_text() for page in rows), (
            f"{figure} is on no page"
        )
    runs = mlflow_runs(repo)
    assert sorted(runs["tags.variant"]) == sorted(variants + tasks + ["report"])
    report_run = runs[runs["tags.variant"] == "report"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == report_run["run_id"]]
    assert sorted(children["tags.variant"]) == sorted(variants + tasks)  # one child run per variant
    liif = runs[runs["tags.variant"] == "liif"].iloc[0]
    assert liif["params.model.args.cell_decode"] == "True"
    assert liif["metrics.psnr/sample/x2"] == pytest.approx(metrics(repo)["liif"]["sample"]["x2"])
    assert liif["metrics.ssim/sample/x2"] == pytest.approx(metrics(repo, "ssim")["liif"]["sample"]["x2"])
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


def test_mlflow_records_each_run_cost_data_and_model(repo):
    """Every training run has its own per-epoch time and peak memory, the datasets it read
    (with their manifests' digests) and its checkpoint as a logged model that carries the evaluation's scores."""
    import hashlib

    import mlflow

    runs = mlflow_runs(repo)  # (the tiny trainings end before MLflow's first system sample: test_tracking.py)
    liif = runs[runs["tags.variant"] == "liif"].iloc[0]
    assert liif["metrics.peak_rss_mb"] > 100 and liif["metrics.epoch_seconds"] > 0
    manifest = (repo / "data/prepared/sample/manifest.tsv").read_bytes()
    inputs = {
        (d.dataset.name, {t.key: t.value for t in d.tags}["split"], d.dataset.digest)
        for d in mlflow.get_run(liif["run_id"]).inputs.dataset_inputs
    }
    assert inputs == {("sample", "train, val", hashlib.sha256(manifest).hexdigest()[:16])}
    for variant in ("liif", "bicubic"):
        summary = json.loads((repo / "models" / variant / "summary.json").read_text())
        model = mlflow.get_logged_model(summary["mlflow_model_id"])
        scores = {m.key: m.value for m in model.metrics}
        assert model.source_run_id == summary["mlflow_run_id"] and model.name == variant
        assert scores["psnr/sample/x2"] == pytest.approx(metrics(repo)[variant]["sample"]["x2"])
        files = [a.path for a in mlflow.MlflowClient().list_logged_model_artifacts(model.model_id)]
        assert files == ["epoch-last.pth"]
    trained = mlflow.get_logged_model(json.loads((repo / "models/liif/summary.json").read_text())["mlflow_model_id"])
    assert {"train_seconds", "peak_rss_mb", "best_val_psnr"} <= {m.key for m in trained.metrics}


def test_runtime_settings_retrain_nothing_and_code_edits_rerun_their_stages(repo):
    checkpoints = {p: p.stat().st_mtime_ns for p in (repo / "models").rglob("*.pth")}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["runtime"].update(threads=1, device="cpu", save_every=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)
    assert "Running stage" not in sh("dvc", "repro", cwd=repo)
    assert checkpoints == {p: p.stat().st_mtime_ns for p in (repo / "models").rglob("*.pth")}  # nothing touched
    sh("git", "checkout", "params.yaml", cwd=repo)

    variants = {p.stem for p in (repo / "configs").glob("*.json")}
    every = {f"{s}@{v}" for s in ("configure", "train", "evaluate") for v in variants}
    prepare = {f"prepare@{d}" for d in yaml.safe_load((repo / "params.yaml").read_text())["data"]["datasets"]}
    edits = {  # a module -> what dvc status shows stale after an edit of it (dvc.yaml's deps are by package)
        "liif/study/report.py": {"report"},  # report code never retrains
        "liif/metrics/psnr.py": {"report"} | {f"evaluate@{v}" for v in variants},  # nor does a metric
        "liif/train/loop.py": {f"train@{v}" for v in variants},  # (evaluate and report follow once it retrains)
        "liif/images.py": {"download", "report"} | prepare | every,  # read by every stage
    }
    for module, stale in edits.items():
        path = repo / module
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        assert set(json.loads(sh("dvc", "status", "--json", cwd=repo))) == stale, module
        path.write_text(original)
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)


def test_exp_run_override_retrains_only_what_depends_on_it(repo):
    before = metrics(repo)
    headline_before = json.loads((repo / "metrics" / "headline.json").read_text())
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
    assert after["liif"] == before["liif-c"]  # now the same configuration as liif-c: the same weights and scores
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=repo))
    baseline = next(row for row in shown if row["rev"] != "workspace")
    (experiment,) = [rev for group in baseline["experiments"] or [] for rev in group["revs"]]
    assert experiment["data"]["params"]["params.yaml"]["data"]["model"]["cell_decode"] is False
    assert baseline["data"]["params"]["params.yaml"]["data"]["model"]["cell_decode"] is True
    recorded = experiment["data"]["metrics"]
    assert recorded["metrics/headline.json"]["data"] == json.loads((repo / "metrics" / "headline.json").read_text())
    assert {p: recorded[f"metrics/eval/{p}.json"]["data"]["psnr"] for p in after} == after
    assert recorded["metrics/headline.json"]["data"]["liif_x2"] != headline_before["liif_x2"]


def test_lte_trains_on_liifs_recipe_and_renders(repo, tmp_path):
    """The tiny study's LTE (model.name: lte) is trained on LIIF's patches and recipe, and renders via liif upscale."""
    import subprocess
    import sys

    from liif.config.params import load_params
    from liif.config.variants import resolve_variant
    from liif.models.checkpoint import load_checkpoint
    from liif.models.lte import LTE

    params = load_params(repo / "params.yaml")
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
    assert config["train"] == resolve_variant(params, "liif")["train"]  # LIIF's recipe
    model, _ = load_checkpoint(repo / "models/lte/epoch-last.pth")
    assert isinstance(model, LTE)
    image = sorted((repo / "data/prepared/sample/test/HR").iterdir())[0]
    out = tmp_path / "up.npy"
    argv = ["upscale", image, "-o", out, "--scale", "1.5", "--checkpoint", repo / "models/lte/epoch-last.pth"]
    proc = subprocess.run([sys.executable, "-m", "liif.cli", *map(str, argv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(np.load(out)).all()
