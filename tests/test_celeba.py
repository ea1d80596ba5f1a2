"""The CelebA-HQ size-varied ground-truth study (spec 3.4): preparation, samples, training and evaluation."""

import numpy as np
import pytest
import torch
from conftest import CPU_RUNTIME, TINY_ENCODER
from PIL import Image

from liif.evaluate import evaluate_task
from liif.layout import PreparedData
from liif.models import LIIF, FixedScaleSR
from liif.prepare import celeba_split, prepare_celeba, write_manifest
from liif.samples import UniformVariedPairs, load_images


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from conftest import DATASETS, need

    src = need(DATASETS / "celeba_hq" / "data1024x1024")
    names = sorted(p.name for p in src.iterdir())[:10]  # 8 PNG (CelebA-HQ index) + JPEG (CelebA id)
    split = celeba_split(names, split_json=None, val_fraction=0.2, seed=0)
    prepared = PreparedData(tmp_path_factory.mktemp("prepared"))
    prepare_celeba(src, prepared, "celeba", split=split)
    write_manifest(prepared.dataset("celeba"), prepared.manifest("celeba"))
    return src, prepared.dataset("celeba"), split


def test_split_is_deterministic_and_disjoint():
    names = [f"{i:05d}.png" for i in range(50)]
    a = celeba_split(names, split_json=None, val_fraction=0.2, seed=0)
    assert a == celeba_split(list(reversed(names)), split_json=None, val_fraction=0.2, seed=0)
    assert len(a["val"]) == 10 and not set(a["train"]) & set(a["val"])


def test_faces_are_resized_as_the_paper_does(faces):
    src, out, split = faces
    name = split["train"][0]
    original = Image.open(src / name).convert("RGB")
    base = original.resize((256, 256), Image.Resampling.BICUBIC)
    assert np.array_equal(
        np.asarray(Image.open(out / "train" / "256" / f"{name.rsplit('.', 1)[0]}.png")), np.asarray(base)
    )
    small = np.asarray(Image.open(out / "train" / "32" / f"{name.rsplit('.', 1)[0]}.png"))
    assert np.array_equal(small, np.asarray(base.resize((32, 32), Image.Resampling.BICUBIC)))  # from 256, not 1024
    assert len(list((out / "test" / "64").iterdir())) == len(split["val"]) == 2


def test_ground_truth_sizes_spread_uniformly_from_l_to_h(faces):
    _, out, _ = faces
    lr = load_images(out / "train" / "64")
    hr = load_images(out / "train" / "128")
    ds = UniformVariedPairs(lr, hr, lr_size=64, hr_size=128, sample_q=1024, augment=True)
    sides = [round(2 / ds[i]["cell"][0, 0].item()) for i in range(len(ds))]
    assert sides[0] == 64 and sides[-1] == 128 and sides == sorted(sides)
    assert sides == [round(64 + 64 * i / (len(ds) - 1)) for i in range(len(ds))]
    resized = UniformVariedPairs(lr, hr, lr_size=64, hr_size=128, sample_q=1024, augment=False, gt_resize=128)
    assert all(round(2 / resized[i]["cell"][0, 0].item()) == 128 for i in range(len(resized)))
    assert ds[0]["inp"].shape == (3, 64, 64) and ds[0]["gt"].shape == (1024, 3)


def test_both_models_train_and_evaluate_at_the_target_size(faces, tmp_path):
    from liif.train import train_variant
    from liif.variants import resolve_variant

    _, out, _ = faces
    params = {
        "model": {
            "name": "liif",
            "encoder": TINY_ENCODER,
            "decoder_hidden": [16],
            "feat_unfold": True,
            "local_ensemble": True,
            "cell_decode": True,
            "predictor_hidden": 16,
            "scale": 2,
        },
        "train": {
            "dataset": "celeba",
            "task": [32, 256],
            "epochs": 2,
            "batch_size": 4,
            "repeat": 1,
            "sample_q": 256,
            "augment": True,
            "lr": 1e-3,
            "milestones": [1],
            "gamma": 0.1,
            "val_images": 2,
            "val_repeat": 1,
            "seed": 0,
            "val_split": "test",
        },
        "variants": {"liif": {}, "upsample": {"model": {"name": "fixed-scale", "scale": 8}}},
    }
    runtime = CPU_RUNTIME
    for name in params["variants"]:
        config = resolve_variant(params, name)
        assert config["train"]["samples"] == "uniform-varied"
        assert config["train"]["gt_resize"] == (256 if name == "upsample" else None)
        summary = train_variant(config, prepared=PreparedData(out.parent), out_dir=tmp_path / name, runtime=runtime)
        assert summary["epochs"] == 2
    model = LIIF(encoder=TINY_ENCODER, decoder_hidden=[16])
    scores = evaluate_task(model, out / "test" / "32", out / "test" / "256", device="cpu", progress=False)
    assert len(scores) == 2 and all(np.isfinite(s.psnr) for s in scores)
    up = FixedScaleSR(encoder=TINY_ENCODER, scale=8)
    assert torch.isfinite(
        torch.tensor(
            [s.psnr for s in evaluate_task(up, out / "test" / "32", out / "test" / "256", device="cpu", progress=False)]
        )
    ).all()
