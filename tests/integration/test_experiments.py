"""The study pipelines of experiments/ on the tiny profile in a temporary copy of the repository: ``dvc repro
experiments/<study>/dvc.yaml`` from the root prepares the root's data, runs the study's setting and leaves its
tables and figure, up to date for ``dvc status``; only the section its ``setting`` names is a dependency."""

import json

import pandas as pd
import pytest
from conftest import needs_dvc, sh, study_copy

from liif.config.params import dump_yaml, read_yaml

pytestmark = [pytest.mark.integration, needs_dvc]

CURVES = "experiments/learning-curves"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dest = study_copy(tmp_path_factory.mktemp("studies") / "repo", "profiles/tiny.yaml", experiments=True)
    study = read_yaml(dest / CURVES / "params.yaml")
    study["setting"] = "tiny"  # the tiny profile's two epochs, a snapshot after each, one variant
    study["tiny"] = {"every": 0.5, "recipes": {"lr-1e-3": {"train": {"lr": 1.0e-3}, "length": 1, "variants": ["liif"]}}}
    study["runtime"] = {"jobs": 1}
    (dest / CURVES / "params.yaml").write_text(dump_yaml(study))
    sh("dvc", "repro", f"{CURVES}/dvc.yaml", cwd=dest)
    return dest


def test_learning_curves_write_one_row_per_snapshot(repo):
    table = pd.read_csv(repo / CURVES / "curves.csv")
    assert list(zip(table["recipe"], table["variant"], table["epoch"])) == [
        ("lr-1e-3", "liif", 1),
        ("lr-1e-3", "liif", 2),
    ]
    assert table[["x2_minus_bicubic", "x4_minus_bicubic", "x12_minus_bicubic", "train_seconds"]].notna().all().all()
    assert list(table["steps"]) == [1, 2]  # three photographs, repeat 1, batch 4: one step an epoch
    summary = [[c.strip() for c in line.split("|")[1:-1]] for line in (repo / CURVES / "curves.md").open()]
    assert [row[:3] for row in summary[2:]] == [["lr-1e-3", "liif", "2"]]  # one row per run: its last snapshot
    assert (repo / CURVES / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (repo / "data" / "prepared" / "sample" / "val" / "HR").is_dir()  # the root's prepare@, run upstream


def test_only_the_named_setting_is_a_dependency(repo):
    status = ["dvc", "status", f"{CURVES}/dvc.yaml"]
    assert "Data and pipelines are up to date" in sh(*status, cwd=repo)
    path = repo / CURVES / "params.yaml"
    original = path.read_text()
    study = read_yaml(path)
    try:
        path.write_text(dump_yaml({**study, "full": {**study["full"], "every": 0.25}, "runtime": {"jobs": 2}}))
        assert "Data and pipelines are up to date" in sh(*status, cwd=repo)
        path.write_text(dump_yaml({**study, "tiny": {**study["tiny"], "every": 0.25}}))
        changed = json.loads(sh(*status, "--json", cwd=repo))
        assert list(changed) == [f"{CURVES}/dvc.yaml:curves"]
    finally:
        path.write_text(original)


def test_recipe_sweep_runs_its_setting_on_the_same_prepared_data(repo):
    sweep = "experiments/recipe-sweep"
    study = read_yaml(repo / sweep / "params.yaml")
    study["setting"] = "tiny"
    study["tiny"] = {
        "start": {"train": {"epochs": 2, "milestones": [1]}},
        "length": 1,
        "every": 0.5,
        "candidates": {"base": {"patch": {}, "variants": ["liif"]}},
    }
    (repo / sweep / "params.yaml").write_text(dump_yaml(study))
    out = sh("dvc", "repro", f"{sweep}/dvc.yaml", cwd=repo)
    assert "Running stage 'prepare@" not in out  # the data the learning curves prepared, not a copy of its own
    table = pd.read_csv(repo / sweep / "sweep.csv")
    assert list(zip(table["candidate"], table["epoch"])) == [("base", 1), ("base", 2)]
    summary = [[c.strip() for c in line.split("|")[1:-1]] for line in (repo / sweep / "sweep.md").open()]
    assert [row[:2] for row in summary[2:]] == [["base", "liif"]]
