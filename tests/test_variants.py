"""A variant's identity: every variant of every profile resolves and builds, the paper profile holds the
paper's recipe (spec section 3), and runtime settings never enter an identity."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from liif.checkpoint import count_parameters
from liif.models import build_model
from liif.params import apply_profile, load_params, runtime_settings
from liif.variants import config_hash, resolve_variant

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ["params.yaml"] + sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "profiles").glob("*.yaml"))
RECIPE_KEYS = {  # what each of the paper's wrappers reads (liif.samples.make_training_sets)
    "downsampled": {"inp_size", "scale_min", "scale_max", "sample_q", "augment"},
    "paired": {"inp_size", "scale_min", "augment"},
    "uniform-varied": {"task", "sample_q", "augment", "gt_resize"},
}
COMMON_KEYS = {
    "dataset",
    "epochs",
    "batch_size",
    "repeat",
    "lr",
    "milestones",
    "gamma",
    "val_images",
    "val_repeat",
    "seed",
    "amp",
}


def profile_params(profile: str) -> dict:
    """params.yaml with a profile applied; the smoke profile is applied on top of the paper profile."""
    params = load_params(ROOT / "params.yaml")
    chain = {"params.yaml": [], "profiles/paper-smoke.yaml": ["profiles/paper.yaml", profile]}.get(profile, [profile])
    for name in chain:
        params = apply_profile(params, yaml.safe_load((ROOT / name).read_text()))
    return params


@pytest.mark.parametrize("profile", PROFILES)
def test_every_variant_of_every_profile_resolves_and_builds(profile):
    params = profile_params(profile)
    runtime_settings(params)
    for variant in params["variants"]:
        config = resolve_variant(params, variant)
        json.dumps(config)  # what configure writes
        model = build_model(config["model"])
        assert count_parameters(model) > 0 or config["model"]["name"] == "bicubic", variant
        recipe = config["train"]
        if recipe is None:
            assert config["model"]["name"] == "bicubic"
            continue
        missing = (COMMON_KEYS | RECIPE_KEYS[recipe["samples"]]) - set(recipe)
        assert not missing, f"{profile} {variant}: recipe misses {sorted(missing)}"
        assert recipe["dataset"] in params["data"]["datasets"], f"{profile} {variant}: unknown training dataset"
        if recipe["samples"] == "paired":
            assert recipe["scale_min"] == recipe["scale_max"] == config["model"]["args"]["scale"]


def test_paper_profile_holds_the_spec_recipe():
    params = profile_params("profiles/paper.yaml")
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
    assert (t["samples"], t["dataset"], t["val_dataset"]) == ("downsampled", "div2k", "div2k-valid")
    assert params["eval"]["checkpoint"] == "epoch-last.pth"  # spec 3.1: report with epoch-last
    assert resolve_variant(params, "liif-d")["model"]["args"]["decoder_hidden"] == [256, 256]
    for k in (2, 3, 4):
        single = resolve_variant(params, f"liif-x{k}")["train"]
        assert (single["scale_min"], single["scale_max"]) == (k, k)
        up = resolve_variant(params, f"upsample-x{k}")
        assert (up["train"]["samples"], up["train"]["inp_size"], up["model"]["args"]["scale"]) == ("paired", 48, k)
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
                    "samples",
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
                "samples": "uniform-varied",
            }
        assert liif_task["model"]["args"]["decoder_hidden"] == [256] * 4 and liif_task["train"]["gt_resize"] is None
        assert up_task["model"]["args"]["scale"] == scale and up_task["train"]["gt_resize"] == task[1]
    assert params["eval"]["task_checkpoint"] == "epoch-best.pth"  # spec 3.4: CelebA-HQ reported with epoch-best
    assert params["data"]["datasets"]["celeba"]["catalogue"] == "celeba-hq"
    eval_scales = {name: spec["scales"] for name, spec in params["eval"]["datasets"].items()}
    assert eval_scales["div2k-valid"] == [2, 3, 4, 6, 12, 18, 24, 30]
    assert all(eval_scales[b] == [2, 3, 4, 6, 8] for b in ("set5", "set14", "b100", "urban100"))


def test_an_encoder_of_another_kind_replaces_the_base_encoder():
    params = load_params(ROOT / "params.yaml")
    params["variants"] = {
        "rdn": {"model": {"encoder": {"name": "rdn", "G0": 8, "n_blocks": 2, "n_convs": 2, "growth": 4}}},
        "wide": {"model": {"encoder": {"n_feats": 16}}},
    }
    assert resolve_variant(params, "rdn")["model"]["args"]["encoder"] == {
        "name": "rdn",
        "G0": 8,
        "n_blocks": 2,
        "n_convs": 2,
        "growth": 4,
    }
    model = build_model(resolve_variant(params, "rdn")["model"])
    assert model(torch.zeros(1, 3, 6, 6), torch.zeros(1, 5, 2), torch.full((1, 5, 2), 0.1)).shape == (1, 5, 3)
    wide = resolve_variant(params, "wide")["model"]["args"]["encoder"]  # same kind: merged, not replaced
    assert wide == {**params["model"]["encoder"], "n_feats": 16}


def test_runtime_settings_are_not_part_of_any_identity():
    params = load_params(ROOT / "params.yaml")
    changed = apply_profile(
        params,
        {"runtime": {"threads": 1, "workers": 3, "device": "cpu", "save_every": 5, "tracking": {"enabled": False}}},
    )
    for variant in params["variants"]:
        config = resolve_variant(params, variant)
        assert config == resolve_variant(changed, variant)
        assert not {"threads", "workers", "device", "save_every", "tracking"} & set(config["train"] or {})
    assert resolve_variant(params, "bicubic")["train"] is None  # nothing to train: -S train.lr=... leaves it alone
    lr = apply_profile(params, {"train": {"lr": 1e-3}})
    assert config_hash(resolve_variant(lr, "bicubic")) == config_hash(resolve_variant(params, "bicubic"))
    assert config_hash(resolve_variant(lr, "liif")) != config_hash(resolve_variant(params, "liif"))


def test_runtime_keys_in_the_wrong_section_or_misspelt_are_refused():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ValueError, match="runtime setting"):
        resolve_variant(apply_profile(params, {"train": {"threads": 2}}), "liif")
    with pytest.raises(ValueError, match="runtime: expected the keys"):
        runtime_settings(apply_profile(params, {"runtime": {"thread": 2}}))


def test_the_smoke_profile_keeps_every_paper_variant_at_its_true_size():
    paper, smoke = profile_params("profiles/paper.yaml"), profile_params("profiles/paper-smoke.yaml")
    assert list(smoke["variants"]) == list(paper["variants"])
    for variant in paper["variants"]:
        full, quick = resolve_variant(paper, variant), resolve_variant(smoke, variant)
        assert quick["model"] == full["model"], variant  # true size, RDN included
        if full["train"] is None:
            continue
        changed = {k for k in full["train"] if full["train"][k] != quick["train"][k]}
        assert changed <= {"epochs", "batch_size", "repeat", "val_images", "val_repeat"}, (variant, changed)
        assert quick["train"]["epochs"] == 1 and quick["train"]["batch_size"] == 2


def test_profiles_replace_the_seed_replicates():
    from liif.params import apply_profile

    base = {"report": {"profile": "x", "replicates": {"liif": ["liif-seed1"]}}, "variants": {"liif": {}}}
    assert apply_profile(base, {"report": {"replicates": {}}})["report"]["replicates"] == {}
    assert apply_profile(base, {"report": {"profile": "y"}})["report"] == {
        "profile": "y",
        "replicates": {"liif": ["liif-seed1"]},
    }
