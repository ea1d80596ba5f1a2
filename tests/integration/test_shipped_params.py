"""The shipped params.yaml and profiles: every profile (alone, or the smoke profile on the paper one) passes the
schema, declares true roles, and resolves to models that build; configs/<v>.json is what params.yaml resolves to;
the paper profile holds the paper's recipe. These read the live files on purpose: a change to them is checked here,
while the unit tests build their own params (tests/conftest.py study_params)."""

import json
from pathlib import Path

import pytest

from liif.config.params import apply_profile, load_params, load_profile
from liif.config.roles import study_roles
from liif.config.schema import check_sections, runtime_settings
from liif.config.variants import RECIPE_KEYS, check_params, resolve_variant
from liif.models import build_model
from liif.models.checkpoint import count_parameters
from liif.protocol import PROTOCOL_SCALES

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))
CHAINS = [[]] + [["paper", name] if name == "paper-smoke" else [name] for name in PROFILES]


def shipped(*profiles: str) -> dict:
    """params.yaml with ``profiles`` applied in order, as scripts/apply_profile.py applies them."""
    params = load_params(ROOT / "params.yaml")
    for name in profiles:
        params = apply_profile(params, load_profile(ROOT / "profiles" / f"{name}.yaml"))
    return params


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_its_datasets_take_only_their_sources_keys(path):
    profile = load_profile(path)
    assert isinstance(profile, dict)
    if profile.get("data"):
        check_sections({"data": profile["data"]}, sections=("data",))


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: "+".join(c) or "default")
def test_every_profile_fits_the_schema_declares_true_roles_and_builds(chain):
    params = shipped(*chain)
    check_params(params)
    study_roles(params)
    runtime_settings(params)
    for variant in params["variants"]:
        config = resolve_variant(params, variant)
        json.dumps(config)  # what configure writes
        model = build_model(config["model"])
        assert count_parameters(model) > 0 or config["model"]["name"] == "bicubic", variant
        recipe = config["train"]
        if recipe is None:  # nothing to learn, or released weights scored instead of trained
            assert config["model"]["name"] == "bicubic" or "checkpoint" in config, variant
            continue
        reads = RECIPE_KEYS["common"] | RECIPE_KEYS[recipe["patches"]]
        missing = reads - {"val_dataset"} - set(recipe)  # val_dataset: the training dataset when absent
        assert not missing, f"{chain} {variant}: recipe misses {sorted(missing)}"
        assert set(recipe) - reads == {"patches"}, f"{chain} {variant}: keys its wrapper ignores"
        assert recipe["dataset"] in params["data"]["datasets"], f"{chain} {variant}: unknown training dataset"
        if recipe["patches"] == "paired":
            assert recipe["scale_min"] == recipe["scale_max"] == config["model"]["args"]["scale"]


def test_the_committed_configs_are_what_params_yaml_resolves_to():
    """configs/<v>.json, committed by the last dvc repro, is still what every variant of params.yaml resolves to."""
    params = shipped()
    for variant in params["variants"]:
        committed = json.loads((ROOT / "configs" / f"{variant}.json").read_text())
        assert resolve_variant(params, variant) == committed, variant


def test_paper_profile_holds_the_spec_recipe():
    params = shipped("paper")
    liif = resolve_variant(params, "liif")
    assert liif["model"] == {
        "name": "liif",
        "args": {
            "encoder": {"name": "edsr-baseline", "n_resblocks": 16, "n_feats": 64},
            "decoder_hidden": [256, 256, 256, 256],
            "feat_unfold": True,
            "local_ensemble": True,
            "cell_decode": True,
        },
    }
    t = liif["train"]
    assert {
        k: t[k]
        for k in (
            "lr",
            "milestones",
            "gamma",
            "epochs",
            "batch_size",
            "repeat",
            "sample_q",
            "inp_size",
            "scale_min",
            "scale_max",
            "augment",
            "val_images",
            "val_repeat",
        )
    } == {
        "lr": 1e-4,
        "milestones": [200, 400, 600, 800],
        "gamma": 0.5,
        "epochs": 1000,
        "batch_size": 16,
        "repeat": 20,
        "sample_q": 2304,
        "inp_size": 48,
        "scale_min": 1,
        "scale_max": 4,
        "augment": True,
        "val_images": 10,
        "val_repeat": 160,
    }
    assert (t["patches"], t["dataset"], t["val_dataset"]) == ("downsampled", "div2k", "div2k-valid")
    assert params["eval"]["checkpoint"] == "epoch-last.pth"  # spec 3.1: report with epoch-last
    assert resolve_variant(params, "liif-d")["model"]["args"]["decoder_hidden"] == [256, 256]
    for k in (2, 3, 4):
        single = resolve_variant(params, f"liif-x{k}")["train"]
        assert (single["scale_min"], single["scale_max"]) == (k, k)
        up = resolve_variant(params, f"upsample-x{k}")
        assert (up["train"]["patches"], up["train"]["inp_size"], up["model"]["args"]["scale"]) == ("paired", 48, k)
    assert resolve_variant(params, "metasr")["model"]["args"]["predictor_hidden"] == 256
    rdn = resolve_variant(params, "rdn-liif")["model"]["args"]["encoder"]
    assert rdn == {"name": "rdn", "G0": 64, "kernel_size": 3, "n_blocks": 16, "n_convs": 8, "growth": 64}  # config B
    model = build_model(resolve_variant(params, "rdn-liif")["model"])
    assert round(count_parameters(model.encoder) / 1e6, 2) == 21.97
    for k in (2, 3, 4):  # T2's per-scale RDN rows
        up = resolve_variant(params, f"rdn-upsample-x{k}")
        assert (up["model"]["args"]["scale"], up["model"]["args"]["encoder"]) == (k, rdn)
    for task, scale in (((64, 128), 2), ((32, 256), 8)):  # T5, spec 3.4
        name = f"{task[0]}-{task[1]}"
        liif_task, up_task = (resolve_variant(params, f"celeba-{kind}-{name}") for kind in ("liif", "upsample"))
        for config in (liif_task, up_task):
            t = config["train"]
            assert {
                k: t[k]
                for k in (
                    "dataset",
                    "task",
                    "epochs",
                    "batch_size",
                    "lr",
                    "milestones",
                    "gamma",
                    "sample_q",
                    "val_images",
                    "patches",
                )
            } == {
                "dataset": "celeba",
                "task": list(task),
                "epochs": 200,
                "batch_size": 16,
                "lr": 1e-4,
                "milestones": [100],
                "gamma": 0.1,
                "sample_q": 1024,
                "val_images": 100,
                "patches": "uniform-varied",
            }
        assert liif_task["model"]["args"]["decoder_hidden"] == [256] * 4 and liif_task["train"]["gt_resize"] is None
        assert up_task["model"]["args"]["scale"] == scale and up_task["train"]["gt_resize"] == task[1]
    assert params["eval"]["task_checkpoint"] == "epoch-best.pth"  # spec 3.4: CelebA-HQ reported with epoch-best
    assert params["data"]["datasets"]["celeba"]["catalogue"] == "celeba-hq"
    eval_scales = {n: s.get("scales", PROTOCOL_SCALES[s["protocol"]]) for n, s in params["eval"]["datasets"].items()}
    assert list(eval_scales["div2k-valid"]) == [2, 3, 4, 6, 12, 18, 24, 30]
    assert all(list(eval_scales[b]) == [2, 3, 4, 6, 8] for b in ("set5", "set14", "b100", "urban100"))


def test_the_smoke_profile_keeps_every_paper_variant_at_its_true_size():
    paper, smoke = shipped("paper"), shipped("paper", "paper-smoke")
    assert list(smoke["variants"]) == list(paper["variants"])
    for variant in paper["variants"]:
        full, quick = resolve_variant(paper, variant), resolve_variant(smoke, variant)
        assert quick["model"] == full["model"], variant  # true size, RDN included
        if full["train"] is None:
            continue
        changed = {k for k in full["train"] if full["train"][k] != quick["train"][k]}
        assert changed <= {"epochs", "batch_size", "repeat", "val_images", "val_repeat"}, (variant, changed)
        assert quick["train"]["epochs"] == 1 and quick["train"]["batch_size"] == 2
