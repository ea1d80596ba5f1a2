"""The CelebA-HQ size-varied ground-truth study (spec 3.4): preparation, samples, training and evaluation."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import CPU_RUNTIME, TINY_ENCODER
from PIL import Image

from liif.data.layout import PreparedData
from liif.data.prepare import prepare_dataset
from liif.models import LIIF, FixedScaleSR
from liif.sources.official import celeba_split
from liif.train.patches import UniformVariedPairs, load_images


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from conftest import DATASETS, need

    faces = need(DATASETS / "celeba_hq" / "data1024x1024")
    local = tmp_path_factory.mktemp("celeba_hq")
    src = local / "data1024x1024"  # a local copy in the official layout holding 10 of the faces
    src.mkdir()
    for face in sorted(p.name for p in faces.iterdir())[:10]:  # 8 PNG (CelebA-HQ index) + JPEG (CelebA id)
        shutil.copy(faces / face, src / face)
    prepared = PreparedData(tmp_path_factory.mktemp("prepared"))
    spec = {"source": "local", "path": str(local), "catalogue": "celeba-hq", "val_fraction": 0.2, "seed": 0}
    prepare_dataset("celeba", spec, raw_root=local.parent, prepared=prepared, lr_scales=(2, 3, 4))
    split = json.loads(prepared.split_record("celeba").read_text())
    assert split == celeba_split(sorted(p.name for p in src.iterdir()), split_json=None, val_fraction=0.2, seed=0)
    assert prepared.manifest("celeba").is_file() and not (prepared.dataset("celeba") / "val").exists()
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


def _rgb_psnr(pred: np.ndarray, hr: np.ndarray) -> float:
    """Spec 3.4/4 for CelebA: RGB over the whole image, no shave, unquantised prediction, peak 1."""
    return -10 * math.log10(np.mean((pred.astype(np.float64) - hr.astype(np.float64)) ** 2))


def test_both_models_train_and_evaluate_at_the_target_size(faces, tmp_path):
    from liif.config.variants import resolve_variant
    from liif.eval.render import render_image
    from liif.eval.scores import evaluate_variant
    from liif.models import build_model, model_spec
    from liif.models.checkpoint import load_checkpoint, read_checkpoint
    from liif.train.loop import train_variant
    from liif.train.patches import make_training_sets

    _, out, split = faces
    prepared = PreparedData(out.parent)
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
            "gamma": 0.0,  # epoch 2 learns nothing: its validation ties epoch 1's, so epoch-best stays epoch 1
            "val_images": 2,
            "val_repeat": 1,
            "seed": 0,
            "val_split": "test",
        },
        "variants": {"liif": {}, "upsample": {"model": {"name": "fixed-scale", "scale": 8}}},
    }
    test_faces = sorted(p.name for p in (out / "test" / "256").iterdir())
    assert len(test_faces) == len(split["val"]) == 2
    # a task variant is scored with task_checkpoint; "checkpoint" (the DIV2K/benchmark one) must not be read
    evaluation = {
        "checkpoint": "epoch-absent.pth",
        "task_checkpoint": "epoch-best.pth",
        "datasets": {},
        "metrics": ["psnr", "ssim"],
    }
    for name, kind in (("liif", LIIF), ("upsample", FixedScaleSR)):
        config = resolve_variant(params, name)
        # the ground truths the recipe feeds: native sizes 32 ... 256 for LIIF, all resized to 256 for the up-sampler
        train_set, val_set = make_training_sets(config, prepared)
        sides = [round(2 / train_set[i]["cell"][0, 0].item()) for i in range(len(train_set))]
        assert sides == ([32, 64, 96, 128, 160, 192, 224, 256] if name == "liif" else [256] * 8)
        assert [round(2 / val_set[i]["cell"][0, 0].item()) for i in range(len(val_set))] == [256, 256]

        model_dir = tmp_path / name
        summary = train_variant(config, prepared=prepared, out_dir=model_dir, runtime=CPU_RUNTIME)
        history = read_checkpoint(model_dir / "epoch-last.pth")["train_state"]["history"]
        assert [h["epoch"] for h in history] == [1, 2] and summary["epochs"] == 2
        assert [h["lr"] for h in history] == [1e-3, 0.0]  # MultiStepLR: milestone 1, gamma 0
        val = [h["val_psnr"] for h in history]
        assert val[0] == val[1]  # the same weights validated on the same samples
        best = read_checkpoint(model_dir / "epoch-best.pth")["train_state"]
        assert best["epoch"] == 1 and summary["best_val_psnr"] == val[0]  # a tie is no improvement

        model, _ = load_checkpoint(model_dir / "epoch-best.pth")  # spec 3.4: CelebA is reported with epoch-best
        assert type(model) is kind and model_spec(model) == config["model"]
        torch.manual_seed(0)
        initial = build_model(config["model"]).state_dict()
        assert any(not torch.equal(v, initial[k]) for k, v in model.state_dict().items()), "nothing was learnt"

        metrics, rows = evaluate_variant(
            config, model_dir=model_dir, prepared=prepared, evaluation=evaluation, device="cpu"
        )
        expected = {}
        for face in test_faces:  # each 32 x 32 input rendered at 256 x 256 and scored independently
            lr = torch.from_numpy(np.array(Image.open(out / "test" / "32" / face))).permute(2, 0, 1) / 255
            hr = np.asarray(Image.open(out / "test" / "256" / face)) / 255
            pred = render_image(model, lr, (256, 256), device="cpu").numpy()
            expected[face] = _rgb_psnr(pred, hr)
        assert list(metrics) == ["psnr", "ssim"] and list(metrics["ssim"]) == ["celeba"]
        metrics = metrics["psnr"]
        assert list(metrics) == ["celeba"] and list(metrics["celeba"]) == ["32-256"]
        assert metrics["celeba"]["32-256"] == pytest.approx(np.mean(list(expected.values())), abs=1e-4)
        cells = [row.split("\t") for row in rows]
        assert [(c[0], c[1], c[2]) for c in cells] == [("celeba", "32-256", face) for face in test_faces]
        assert [float(c[3]) for c in cells] == pytest.approx([expected[f] for f in test_faces], abs=1e-4)
