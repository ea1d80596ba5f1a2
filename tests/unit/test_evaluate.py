"""The pipeline's evaluation (spec section 4): shipped LR at x2-x4, PIL-downsampled HR crops above,
no silent change of degradation, and no scoring of another variant's weights or of an unfinished training."""

import json

import numpy as np
import pytest
import torch
from conftest import random_image, save_run, study_params
from PIL import Image

from liif.config.variants import config_hash
from liif.data.layout import PreparedData
from liif.eval.scores import evaluate_variant
from liif.images import ImageError, list_images, load_image, matlab_bicubic, pil_bicubic
from liif.metrics.psnr import psnr
from liif.models import Bicubic
from liif.models.checkpoint import CheckpointError, save_checkpoint

CONFIG = {"variant": "bicubic", "model": {"name": "bicubic", "args": {}}, "train": None}


def save_png(tensor: torch.Tensor, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((tensor.permute(1, 2, 0) * 255).round().byte().numpy()).save(path)


@pytest.fixture
def prepared(tmp_path):
    """Two test images with LR folders whose content differs from MATLAB bicubic, so their use is visible."""
    prepared = PreparedData(tmp_path / "prepared")
    for i, (h, w) in enumerate([(48, 60), (36, 42)]):
        hr = random_image(h, w, seed=i)
        save_png(hr, prepared.hr("set", "test") / f"im{i}.png")
        for s in (2, 3):
            lr = matlab_bicubic((hr.permute(1, 2, 0) * 255).round().byte().numpy(), scale=1 / s)
            lr = np.clip(lr.astype(int) + 3, 0, 255).astype(np.uint8)  # a "shipped" LR that is not ours
            (prepared.lr("set", "test", s)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(lr).save(prepared.lr("set", "test", s) / f"im{i}x{s}.png")
    model_dir = tmp_path / "models" / "bicubic"
    save_checkpoint(
        model_dir / "epoch-last.pth",
        model=Bicubic(),
        metadata={"variant": "bicubic", "config_hash": config_hash(CONFIG)},
    )
    return prepared, model_dir


def evaluation(scales, metrics=("psnr", "ssim")):
    return {
        "checkpoint": "epoch-last.pth",
        "task_checkpoint": "epoch-best.pth",
        "datasets": {"set": {"protocol": "div2k", "scales": scales}},
        "metrics": list(metrics),
    }


def test_shipped_lr_in_distribution_and_downsampled_hr_beyond(prepared):
    data, model_dir = prepared
    decoy = data.lr("set", "test", 6)  # spec 4: above x4 the LR is always made from HR, even if a folder exists
    decoy.mkdir(parents=True)
    for name in ("im0x6.png", "im1x6.png"):
        Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(decoy / name)
    metrics, rows = evaluate_variant(
        CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2, 6]), device="cpu"
    )
    assert list(metrics) == ["psnr", "ssim"] and set(metrics["psnr"]["set"]) == {"x2", "x6"} and len(rows) == 4
    expected = {2: [], 6: []}
    for hr_path in list_images(data.hr("set", "test")):
        hr, _ = load_image(hr_path)
        lr, _ = load_image(data.lr("set", "test", 2) / f"{hr_path.stem}x2.png")  # the shipped file, as given
        crop = hr[:, : lr.shape[1] * 2, : lr.shape[2] * 2]
        expected[2].append(
            psnr(Bicubic().resize(lr, crop.shape[-2:]).permute(2, 0, 1), crop, protocol="div2k", scale=2)
        )
        h6, w6 = hr.shape[1] // 6, hr.shape[2] // 6  # x6: HR cropped to a multiple of 6, PIL-bicubic down-sampled
        crop = hr[:, : h6 * 6, : w6 * 6]
        made = pil_bicubic(crop, (h6, w6))
        expected[6].append(
            psnr(Bicubic().resize(made, crop.shape[-2:]).permute(2, 0, 1), crop, protocol="div2k", scale=6)
        )
    for s in (2, 6):
        assert metrics["psnr"]["set"][f"x{s}"] == round(sum(expected[s]) / 2, 4)  # as before metrics had keys


def test_a_missing_shipped_lr_folder_is_an_error_not_another_degradation(prepared):
    data, model_dir = prepared
    with pytest.raises(ImageError, match=r"X4: missing; x4 is evaluated on the shipped .* lr_scales"):
        evaluate_variant(CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2, 4]), device="cpu")


def test_weights_of_another_variant_or_configuration_are_refused(prepared):
    data, model_dir = prepared
    other = {**CONFIG, "variant": "liif"}
    with pytest.raises(CheckpointError, match="trained as variant 'bicubic'.*not 'liif'"):
        evaluate_variant(other, model_dir=model_dir, prepared=data, evaluation=evaluation([2]), device="cpu")
    save_checkpoint(
        model_dir / "epoch-last.pth", model=Bicubic(), metadata={"variant": "bicubic", "config_hash": "0123"}
    )
    with pytest.raises(CheckpointError, match="configuration 0123"):
        evaluate_variant(CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2]), device="cpu")


def test_a_model_whose_training_diverged_is_refused(prepared):
    """liif.train.loop leaves diverged.json when a run diverges; evaluation refuses that configuration's model."""
    import json

    data, model_dir = prepared
    marker = {"variant": "bicubic", "config_hash": config_hash(CONFIG), "epoch": 7, "loss": 14.61234, "remedy": "fix"}
    (model_dir / "diverged.json").write_text(json.dumps(marker))
    with pytest.raises(CheckpointError, match=r"the training of bicubic diverged at epoch 7 \(loss 14.61\).*; fix$"):
        evaluate_variant(CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2]), device="cpu")
    (model_dir / "diverged.json").write_text(json.dumps({**marker, "config_hash": "0123"}))  # another recipe's
    metrics, _ = evaluate_variant(CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2]), device="cpu")
    assert set(metrics["psnr"]["set"]) == {"x2"}


@pytest.fixture
def toy_metric():
    """A metric registered from outside liif/metrics for one test, as a module of the package registers itself."""
    from liif.metrics import METRICS, metric

    @metric("toy-max-error", higher_is_better=False, digits=3)
    def max_error(pred, target, *, protocol, scale, grey=False):
        return (pred.double() - target.double()).abs().max().item()

    yield max_error
    METRICS._entries.pop("toy-max-error")


def test_each_metric_named_in_eval_metrics_is_computed_and_written(prepared, toy_metric):
    """Means keyed by metric, one TSV column per metric with the metric's decimals, in eval.metrics' order."""
    from liif.eval.scores import per_image_header

    data, model_dir = prepared
    names = ["psnr", "toy-max-error", "ssim"]
    metrics, rows = evaluate_variant(
        CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2, 6], names), device="cpu"
    )
    assert list(metrics) == names and all(set(metrics[m]["set"]) == {"x2", "x6"} for m in names)
    assert 0 < metrics["toy-max-error"]["set"]["x6"] <= 1 and 0 < metrics["ssim"]["set"]["x2"] < 1
    assert per_image_header(metrics) == "dataset\tscale\timage\tpsnr\ttoy-max-error\tssim"
    cells = [row.split("\t") for row in rows]
    assert [c[:3] for c in cells] == [["set", s, f"im{i}.png"] for s in ("2", "6") for i in (0, 1)]
    assert all(
        len(c[3].split(".")[1]) == 4 and len(c[4].split(".")[1]) == 3 and len(c[5].split(".")[1]) == 5 for c in cells
    )
    mean = sum(float(c[4]) for c in cells[2:]) / 2
    assert metrics["toy-max-error"]["set"]["x6"] == pytest.approx(mean, abs=1e-3)
    only_psnr, rows = evaluate_variant(
        CONFIG, model_dir=model_dir, prepared=data, evaluation=evaluation([2], ["psnr"]), device="cpu"
    )
    assert only_psnr == {"psnr": {"set": {"x2": metrics["psnr"]["set"]["x2"]}}} and len(rows[0].split("\t")) == 4


def trained_config() -> dict:
    from liif.config.variants import resolve_variant

    return resolve_variant(study_params(), "liif")


def test_only_a_training_that_finished_is_evaluated(tmp_path):
    """A run killed at epoch 21 of 300 (its diverged.json deleted, or never written) is refused before anything
    is scored, as is one without its summary or with another configuration's."""
    from liif.eval.scores import finished_training

    config, model_dir = trained_config(), tmp_path / "liif"
    epochs, mine = config["train"]["epochs"], config_hash(config)
    save_run(model_dir, config, epoch=21, summary_hash=None)
    with pytest.raises(CheckpointError) as refused:
        finished_training(config, model_dir)
    assert str(refused.value) == (
        f"{model_dir / 'epoch-last.pth'}: is at epoch 21 of {epochs}: the training of liif did not finish, so it "
        "is not evaluated; run `dvc repro train@liif` to finish it"
    )
    save_run(model_dir, config, epoch=epochs, summary_hash=None)
    with pytest.raises(CheckpointError, match=r"summary\.json: missing: the training of liif did not finish"):
        finished_training(config, model_dir)
    save_run(model_dir, config, epoch=epochs, summary_hash="0123")
    with pytest.raises(CheckpointError, match=rf"written by a training of configuration 0123, not {mine}"):
        finished_training(config, model_dir)
    save_run(model_dir, config, epoch=epochs, summary_hash=mine)
    assert finished_training(config, model_dir)["config_hash"] == mine
    (model_dir / "diverged.json").write_text(json.dumps({"config_hash": mine, "epoch": 22, "remedy": "fix"}))
    with pytest.raises(CheckpointError, match=r"the training of liif diverged at epoch 22 .*; fix$"):
        finished_training(config, model_dir)
