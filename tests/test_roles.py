"""Roles: what each variant is, declared once in params.yaml and never read from a name or into an identity."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from liif.params import apply_profile, load_params
from liif.roles import RoleError, study_roles
from liif.variants import resolve_variant

ROOT = Path(__file__).resolve().parents[1]


def test_roles_do_not_enter_any_identity():
    """configs/<v>.json, committed by the last dvc repro, is still what every variant resolves to."""
    params = load_params(ROOT / "params.yaml")
    for variant in params["variants"]:
        committed = json.loads((ROOT / "configs" / f"{variant}.json").read_text())
        assert resolve_variant(params, variant) == committed, variant
        other_role = copy.deepcopy(params)
        other_role["variants"][variant]["role"] = "other"
        assert resolve_variant(other_role, variant) == committed


def test_what_a_role_implies_is_read_from_the_configuration():
    roles = study_roles(load_params(ROOT / "params.yaml"))
    assert roles.base == "liif" and roles.bicubic == "bicubic" and roles.metasr == "metasr"
    assert roles.fixed_scale() == {"upsample-x2": 2, "upsample-x3": 3, "upsample-x4": 4}  # from model.scale
    assert roles.single_scale() == {"liif-x2": 2, "liif-x3": 3, "liif-x4": 4}  # from train.scale_min/max
    assert roles.replicates() == {"liif": ["liif-seed1", "liif-seed2"]}
    assert roles.in_distribution([2, 3, 4, 6, 12]) == [2, 3, 4]  # train.scale_min 1 .. scale_max 4
    tasks = roles.size_varied()
    assert tasks[("squares", (16, 128))] == {"liif": "sized-liif-16-128", "up-sampling": "sized-upsample-16-128"}


def test_the_in_distribution_range_follows_the_recipe():
    params = load_params(ROOT / "params.yaml")
    params["train"]["scale_max"] = 3
    assert study_roles(params).in_distribution([2, 3, 4, 6]) == [2, 3]


@pytest.mark.parametrize(
    "variant, role, message",
    [
        ("liif-c", None, "variants.liif-c.role: missing"),
        ("liif-c", {"ablation": "cell_decod"}, "'cell_decod' is not a component; expected one of cell_decode"),
        ("liif-c", "ablaton", "'ablaton' is not a role"),
        ("liif-c", "ablation", "write {ablation: ...} naming the component"),
        ("metasr", "fixed-scale", "fixed-scale: needs model.name fixed-scale, the variant resolves to metasr"),
        ("liif-x2", "fixed-scale", "needs model.name fixed-scale"),
        ("liif", "single-scale", "needs train.scale_min = scale_max, found 1-4"),
        ("liif-seed1", {"seed_of": "liif-seed9"}, "'liif-seed9' is not a variant of params.yaml"),
        ("liif-seed1", {"seed_of": "liif-seed2"}, "seed_of names another seed replicate"),
        ("liif-c", "base", "liif, liif-c all declare role base; keep one"),
        ("liif", "size-varied", "needs train.task [L, H]"),
    ],
)
def test_a_wrong_role_is_one_line_naming_the_variant(variant, role, message):
    params = load_params(ROOT / "params.yaml")
    params["variants"][variant] = {**(params["variants"][variant] or {}), "role": role}
    if role is None:
        del params["variants"][variant]["role"]
    with pytest.raises(RoleError) as caught:
        study_roles(params)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_renamed_ablation_reaches_the_rq4_table(tmp_path):
    """The report stage itself, on the tiny profile with liif-c renamed: the ablation is found by its role."""
    params = apply_profile(load_params(ROOT / "params.yaml"), yaml.safe_load((ROOT / "profiles/tiny.yaml").read_text()))
    params["variants"]["no-cell-please"] = params["variants"].pop("liif-c")
    params["report"]["figures"] = False
    params["runtime"]["tracking"]["enabled"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    scores = {"liif": 30.0, "liif-seed1": 30.2, "no-cell-please": 29.0, "bicubic": 29.5, "metasr": 30.1}
    for variant, psnr in {**scores, "upsample-x2": 30.4}.items():
        (metrics / f"{variant}.json").write_text(json.dumps({"sample": {"x2": psnr, "x5": psnr - 4}}))
    for variant, psnr in {"sized-liif-16-64": 25.0, "sized-upsample-16-64": 24.5}.items():
        (metrics / f"{variant}.json").write_text(json.dumps({"squares": {"16-64": psnr}}))
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
