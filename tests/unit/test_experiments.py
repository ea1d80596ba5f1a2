"""The study pipelines of experiments/: each study's params file says what it runs (both settings pass its script's
checks, and the full setting is what made the committed full-run tables), a mistake in it is one line, and
held-out reads exactly the checkpoints its dvc.yaml depends on."""

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, save_run, study_params
from PIL import Image

from liif.config.params import ParamsError, dump_yaml, load_params, read_yaml
from liif.config.roles import study_roles
from liif.config.variants import resolve_variant
from liif.images import matlab_bicubic, write_png
from liif.sources.sample import export_sample_suite

EXPERIMENTS = ROOT / "experiments"
SCRIPTS = {"learning-curves": "curves", "recipe-sweep": "sweep", "held-out": "held_out"}
READERS = {"learning-curves": "read_setting", "recipe-sweep": "read_setting", "held-out": "read_study"}


def script(study: str):
    """A study's script as a module (its folder's name is not a Python package name)."""
    path = EXPERIMENTS / study / f"{SCRIPTS[study]}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{SCRIPTS[study]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_setting(tmp_path, study: str, name: str, **changes):
    """A copy of a study's params file with ``setting: name`` and ``changes`` to its sections."""
    params = {**read_yaml(EXPERIMENTS / study / "params.yaml"), "setting": name, **changes}
    path = tmp_path / "params.yaml"
    path.write_text(dump_yaml(params))
    return path


@pytest.mark.parametrize("study", list(SCRIPTS))
def test_every_setting_of_each_study_passes_its_script_checks(tmp_path, study):
    params = read_yaml(EXPERIMENTS / study / "params.yaml")
    assert params["setting"] in ("quick", "full")
    read = getattr(script(study), READERS[study])
    for name in ("quick", "full"):
        assert read(with_setting(tmp_path, study, name))[:2] == (name, params[name])


@pytest.mark.parametrize("study", list(SCRIPTS))
def test_a_setting_naming_no_section_is_one_line(tmp_path, study):
    read = getattr(script(study), READERS[study])
    with pytest.raises(ParamsError, match=r"params.yaml setting: 'fast' names no section of the file; use quick"):
        read(with_setting(tmp_path, study, "fast"))


def test_a_wrong_recipe_value_names_its_key(tmp_path):
    curves = script("learning-curves")
    bad = {"every": 0.5, "recipes": {"r": {"length": 0, "variants": ["liif"]}}}
    with pytest.raises(ParamsError, match=r"params.yaml q.recipes.r.length: 0; a positive multiple"):
        curves.read_setting(with_setting(tmp_path, "learning-curves", "q", q=bad))
    sweep = script("recipe-sweep")
    bad = {**read_yaml(EXPERIMENTS / "recipe-sweep" / "params.yaml")["quick"], "start": {"data": {}}}
    with pytest.raises(ParamsError, match=r"params.yaml q.start: expected a patch of params.yaml's model and/or"):
        sweep.read_setting(with_setting(tmp_path, "recipe-sweep", "q", q=bad))


def test_learning_curves_full_setting_is_the_committed_full_run():
    """Its recipes and variants are the runs of full-run/curves.csv, each at the epochs and snapshot count it had."""
    curves = script("learning-curves")
    full = read_yaml(EXPERIMENTS / "learning-curves" / "params.yaml")["full"]
    table = pd.read_csv(EXPERIMENTS / "learning-curves" / "full-run" / "curves.csv")
    runs = [(r, v) for r, spec in full["recipes"].items() for v in spec["variants"]]
    assert sorted(runs) == sorted(set(zip(table["recipe"], table["variant"])))
    params = study_params()  # the default recipe: 300 epochs, decay at 180 and 255; the RQ3 pair 60 epochs
    for (recipe, variant), group in table.groupby(["recipe", "variant"]):
        spec = full["recipes"][recipe]
        config = curves.recipe_config(params, variant, spec["train"], spec["length"])
        assert config["train"]["lr"] == spec["train"]["lr"]
        every = max(round(config["train"]["epochs"] * full["every"]), 1)
        if group["diverged"].isna().all():
            assert group["epoch"].max() == config["train"]["epochs"], (recipe, variant)
            assert list(group["epoch"])[:-1] == list(range(every, config["train"]["epochs"], every))[:15]
    assert curves.recipe_config(params, "liif", {"lr": 1e-3}, 4 / 3)["train"]["milestones"] == [240, 340]


def test_recipe_sweep_full_setting_is_the_committed_sweep():
    """Its candidates are those of sweep.csv, each from the 100-epoch start, snapshots every quarter."""
    sweep = script("recipe-sweep")
    full = read_yaml(EXPERIMENTS / "recipe-sweep" / "params.yaml")["full"]
    table = pd.read_csv(EXPERIMENTS / "recipe-sweep" / "sweep.csv")
    runs = [(c, v) for c, spec in full["candidates"].items() for v in spec["variants"]]
    assert sorted(runs) == sorted(set(zip(table["candidate"], table["variant"])))
    summary = [[c.strip() for c in line.split("|")[1:3]] for line in (EXPERIMENTS / "recipe-sweep" / "sweep.md").open()]
    assert [tuple(row) for row in summary[2:]] == runs  # the table lists them in the order of the setting
    params = study_params()
    for (candidate, variant), group in table.groupby(["candidate", "variant"]):
        config = sweep.candidate_config(params, full, candidate, variant)
        assert list(group["epoch"]) == [25, 50, 75, 100]
        assert config["train"]["epochs"] == 100
    base = sweep.candidate_config(params, full, "base", "liif")["train"]
    assert (base["lr"], base["milestones"], base["gamma"], base["channel_shuffle"]) == (2e-3, [70, 90], 0.5, False)
    wider = sweep.candidate_config(params, full, "shuffle-lr-4e-3-encoder-4x48", "liif")["model"]["args"]["encoder"]
    assert wider == {**params["model"]["encoder"], "n_resblocks": 4, "n_feats": 48}
    quick = sweep.candidate_config(
        params, read_yaml(EXPERIMENTS / "recipe-sweep" / "params.yaml")["quick"], "base", "liif"
    )
    assert (quick["train"]["epochs"], quick["train"]["milestones"]) == (10, [7, 9])


def test_held_out_depends_on_exactly_the_checkpoints_it_reads():
    """The models/<v> and configs/<v>.json deps of held-out's dvc.yaml are the variants it scores by role in the
    shipped params.yaml: a variant added or renamed there must be added to the deps too."""
    stage = yaml.safe_load((EXPERIMENTS / "held-out" / "dvc.yaml").read_text())["stages"]["score"]
    deps = [d for d in stage["deps"] if isinstance(d, str)]
    held_out = script("held-out")
    variants = held_out.trained_variants(study_roles(load_params(ROOT / "params.yaml")))
    assert sorted(d.removeprefix("../../models/") for d in deps if d.startswith("../../models/")) == sorted(variants)
    assert sorted(d[len("../../configs/") : -5] for d in deps if d.startswith("../../configs/")) == sorted(variants)
    assert {"liif", "liif-seed1", "metasr", "upsample-x2"} <= set(variants)


def test_held_out_scores_every_set_and_scale(tmp_path, monkeypatch):
    """held_out.py end to end on checkpoints of the study's shape and two real photographs as a benchmark set:
    one row per set and scale, LIIF the mean over its seeds, an up-sampler only at its own scale."""
    params = study_params()
    roles = study_roles(params)
    held_out = script("held-out")
    (tmp_path / "configs").mkdir()
    for variant in held_out.trained_variants(roles):
        config = resolve_variant(params, variant)
        (tmp_path / "configs" / f"{variant}.json").write_text(json.dumps(config))
        (tmp_path / "models" / variant).mkdir(parents=True)
        save_run(tmp_path / "models" / variant, config, epoch=1, summary_hash=None)
    photos = tmp_path / "benchmark" / "Tiny" / "HR"
    for path in export_sample_suite(["camera", "coins"], tmp_path / "photos"):
        hr = np.asarray(Image.open(path).convert("RGB"))[:48, :64]
        write_png(hr, photos / path.name)
        write_png(matlab_bicubic(hr, scale=0.5), photos.parent / "LR_bicubic" / "X2" / f"{path.stem}x2.png")
    (tmp_path / "params.yaml").write_text(dump_yaml(params))
    study = {"setting": "quick", "benchmark": "benchmark", "quick": {"sets": ["Tiny"], "scales": [2, 8]}}
    (tmp_path / "study.yaml").write_text(dump_yaml(study))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["held_out.py", "--study", "study.yaml", "--params", "params.yaml"])
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--configs", "configs", "--models", "models"])
    assert held_out.main() == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert "upsample-x2 Tiny x2" in scores and "upsample-x2 Tiny x8" not in scores
    assert "upsample-x3 Tiny x2" not in scores and "bicubic Tiny x8" in scores
    table = (tmp_path / "held_out.md").read_text().splitlines()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in table[2:]]
    assert [r[:2] for r in rows] == [["Tiny", "x2"], ["Tiny", "x8"]]
    liif = np.mean([scores[f"{v} Tiny x2"] for v in ("liif", "liif-seed1", "liif-seed2")])
    assert rows[0][2] == f"{liif:+.2f}" and rows[0][6] == f"{liif - scores['upsample-x2 Tiny x2']:+.2f}"
    assert rows[1][6] == "+nan"  # no up-sampler at x8
