"""A variant's identity: every variant resolves to a model that builds and the recipe its sample wrapper reads, an
encoder of another kind replaces the base's, runtime settings never enter an identity, and a train key changes the
identity exactly when it changes what is learnt."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL_SECTION, study_params

from liif.config.params import ParamsError, apply_profile
from liif.config.schema import runtime_settings
from liif.config.variants import RECIPE_KEYS, config_hash, resolve_variant
from liif.models import build_model
from liif.models.checkpoint import count_parameters


def test_every_variant_resolves_and_builds():
    params = study_params()
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
        reads = RECIPE_KEYS["common"] | RECIPE_KEYS[recipe["patches"]]
        missing = reads - {"val_dataset"} - set(recipe)  # val_dataset: the training dataset when absent
        assert not missing, f"{variant}: recipe misses {sorted(missing)}"
        assert set(recipe) - reads == {"patches"}, f"{variant}: keys its wrapper ignores"
        assert recipe["dataset"] in params["data"]["datasets"], f"{variant}: unknown training dataset"
        if recipe["patches"] == "paired":
            assert recipe["scale_min"] == recipe["scale_max"] == config["model"]["args"]["scale"]


def test_an_encoder_of_another_kind_replaces_the_base_encoder():
    params = study_params()
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


def test_a_grey_base_makes_every_model_of_the_study_grey_unless_it_says_otherwise():
    params = study_params()
    params["model"]["channels"] = 1
    params["variants"] = {
        "metasr": {"model": {"name": "metasr", "predictor_hidden": 8}},
        "bicubic": {"model": {"name": "bicubic"}},
        "rgb": {"model": {"name": "fixed-scale", "scale": 2, "channels": 3}},
    }
    assert resolve_variant(params, "metasr")["model"]["args"]["channels"] == 1
    assert resolve_variant(params, "bicubic")["model"]["args"] == {"channels": 1}
    assert "channels" not in resolve_variant(params, "rgb")["model"]["args"]  # 3, the default, is not recorded
    del params["model"]["channels"]
    assert "channels" not in resolve_variant(params, "metasr")["model"]["args"]  # an RGB study as before


def test_runtime_settings_are_not_part_of_any_identity():
    params = study_params()
    changed = apply_profile(
        params,
        {"runtime": {"threads": 1, "workers": 3, "device": "cpu", "save_every": 5, "tracking": {"enabled": False}}},
    )
    for variant in params["variants"]:
        config = resolve_variant(params, variant)
        assert config == resolve_variant(changed, variant)
        assert not {"threads", "workers", "device", "save_every", "tracking"} & set(config["train"] or {})
    assert resolve_variant(params, "bicubic")["train"] is None  # nothing to train: -S train.lr=... leaves it alone
    lr = apply_profile(params, {"train": {"lr": 2 * params["train"]["lr"]}})  # any other lr than the default
    assert config_hash(resolve_variant(lr, "bicubic")) == config_hash(resolve_variant(params, "bicubic"))
    assert config_hash(resolve_variant(lr, "liif")) != config_hash(resolve_variant(params, "liif"))


def test_runtime_keys_in_the_wrong_section_or_misspelt_are_refused():
    params = study_params()
    with pytest.raises(ParamsError, match="runtime setting"):
        resolve_variant(apply_profile(params, {"train": {"threads": 2}}), "liif")
    with pytest.raises(ParamsError, match="runtime.thread: unknown key; did you mean threads"):
        runtime_settings(apply_profile(params, {"runtime": {"thread": 2}}))


# A changed value for every train key a wrapper may read (liif.config.variants.RECIPE_KEYS), against BASE_TRAIN.
PROBES = {
    "dataset": "other",
    "val_dataset": "other",
    "val_split": "train",
    "epochs": 3,
    "batch_size": 3,
    "repeat": 3,
    "lr": 5e-4,
    "milestones": [2],
    "gamma": 0.1,
    "val_images": 2,
    "val_repeat": 3,
    "seed": 1,
    "augment": False,
    "amp": "bf16",
    "inp_size": 12,
    "scale_min": 2,
    "scale_max": 3,
    "sample_q": 32,
    "channel_shuffle": True,
    "task": [16, 24],
    "gt_resize": 24,
}


LOOP_KEYS = {
    "epochs",
    "batch_size",
    "lr",
    "milestones",
    "gamma",
    "amp",
}  # read by liif.train.loop.fit, not the samples


BASE_TRAIN = {
    "dataset": "photos",
    "val_split": "test",
    "epochs": 2,
    "batch_size": 4,
    "repeat": 2,
    "lr": 1e-3,
    "milestones": [1],
    "gamma": 0.5,
    "val_images": 1,
    "val_repeat": 1,
    "seed": 0,
    "augment": True,
    "inp_size": 16,
    "scale_min": 1,
    "scale_max": 4,
    "sample_q": 64,
}


def _prepared_photos(root: Path):
    """Two datasets with HR, MATLAB-bicubic X2 and square 16/24/32 versions of each image, per split."""
    from conftest import random_image

    from liif.data.layout import PreparedData
    from liif.images import matlab_bicubic, write_png

    prepared = PreparedData(root)
    for d, name in enumerate(("photos", "other")):
        for split in ("train", "test"):
            for i in range(2):
                hr = random_image(64, 72, seed=100 * d + 10 * i + (split == "test"))
                hr = (hr * 255).round().byte().permute(1, 2, 0).numpy()
                write_png(hr, prepared.hr(name, split) / f"{i}.png")
                write_png(matlab_bicubic(hr, scale=0.5), prepared.lr(name, split, 2) / f"{i}x2.png")
                for size in (16, 24, 32):
                    write_png(
                        matlab_bicubic(hr[:64, :64], size=(size, size)), prepared.sized(name, split, size) / f"{i}.png"
                    )
    return prepared


def _samples(config: dict, prepared) -> list:
    """Every tensor of every sample the training and validation sets of ``config`` hold, in order."""
    from liif.train.patches import make_training_sets

    return [
        [{k: v.clone() for k, v in ds[i].items()} for i in range(len(ds))]
        for ds in make_training_sets(config, prepared)
    ]


def _same(a: list, b: list) -> bool:
    return [[sorted(x) for x in s] for s in a] == [[sorted(x) for x in s] for s in b] and all(
        x[k].shape == y[k].shape and torch.equal(x[k], y[k])
        for s, t in zip(a, b, strict=True)
        for x, y in zip(s, t, strict=True)
        for k in x
    )


def test_a_train_key_changes_the_identity_exactly_when_it_changes_what_is_learnt(tmp_path):
    """Behaviour, not a list: for each of the paper's sample wrappers, a key the wrapper ignores
    (``sample_q`` of the fixed-scale up-sampler, spec 2.5: every HR pixel is supervised; the crop and
    scale range of the size-varied task, spec 3.4) leaves the config hash alone, so DVC retrains
    nothing; a key that changes the training samples, or the training loop, changes it."""
    assert set(PROBES) == set().union(*RECIPE_KEYS.values()), "a recipe key without a probe value"
    prepared = _prepared_photos(tmp_path)
    model = dict(TINY_MODEL_SECTION)
    variants = {
        "liif": {},
        "up": {"model": {"name": "fixed-scale", "scale": 2}},
        "sized-liif": {"train": {"task": [16, 32]}},
        "sized-up": {"model": {"name": "fixed-scale", "scale": 2}, "train": {"task": [16, 32]}},
    }
    ignored, wrong = {}, []
    for variant, override in variants.items():
        params = {"model": model, "train": BASE_TRAIN, "variants": {variant: override}}
        base = resolve_variant(params, variant)
        samples = _samples(base, prepared)
        for key, value in PROBES.items():
            train = {**override.get("train", {}), key: value}
            changed = {**params, "variants": {variant: {**override, "train": train}}}
            config = resolve_variant(changed, variant)
            same_identity = config_hash(config) == config_hash(base)
            if key in LOOP_KEYS:
                if same_identity:
                    wrong.append(f"{variant}: train.{key} shapes the weights but is not in the identity")
                continue
            if same_identity != _same(_samples(config, prepared), samples):
                effect = "the samples but not the hash" if same_identity else "the hash but not the samples"
                wrong.append(f"{variant}: train.{key} changes {effect}")
            if same_identity:
                ignored.setdefault(variant, set()).add(key)
    assert not wrong, "the identity and the samples disagree: " + "; ".join(wrong)
    # and the spec's ignored keys were seen ignored (gt_resize is derived from the task, scale_* of up from the model)
    assert {"sample_q", "scale_min", "scale_max"} <= ignored.get("up", set())
    for variant in ("sized-liif", "sized-up"):
        assert {"inp_size", "scale_min", "scale_max", "gt_resize"} <= ignored.get(variant, set())


def test_a_variant_naming_another_model_gets_the_base_encoder_and_its_own_keys_only():
    base = dict(TINY_MODEL_SECTION)
    params = {
        "model": base,
        "train": BASE_TRAIN,
        "variants": {
            "meta": {"model": {"name": "metasr"}},
            "meta-rdn": {"model": {"name": "metasr", "encoder": {"name": "rdn", "G0": 8}, "predictor_hidden": 4}},
            "full": {"model": {"encoder": {"name": "edsr"}}},
        },
    }
    meta = resolve_variant(params, "meta")["model"]
    assert meta == {"name": "metasr", "args": {"encoder": base["encoder"], "predictor_hidden": 256}}  # its default
    assert resolve_variant(params, "meta-rdn")["model"]["args"] == {
        "encoder": {"name": "rdn", "G0": 8},
        "predictor_hidden": 4,
    }
    # an encoder with the same arguments overrides the base's keys; its own defaults fill the rest when built
    full = resolve_variant(params, "full")["model"]["args"]["encoder"]
    assert full == {"name": "edsr", "n_resblocks": 1, "n_feats": 8}
    assert build_model({"name": "liif", "args": {"encoder": {"name": "edsr"}}}).encoder.body[0].res_scale == 0.1
