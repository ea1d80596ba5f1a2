"""Training in-process: the paper's patch samplers, checkpoints and resumption, variants resolved from the base
sections, training data read from the folders the recipe names, and mixed precision as part of the identity."""

import json
import math

import pytest
import torch
from conftest import CPU_RUNTIME, TINY_MODEL_SECTION, random_image, study_params, tiny_config, tiny_sets, write_tree

from liif.config.params import ParamsError, apply_profile
from liif.config.variants import config_hash, resolve_variant
from liif.models.checkpoint import read_checkpoint
from liif.train.loop import fit
from liif.train.patches import DownsampledPatches, PairedPatches


def test_downsampled_patches_follow_the_spec():
    images = [torch.round(random_image(120, 130) * 255).to(torch.uint8)]
    ds = DownsampledPatches(images, inp_size=48, scale_min=1, scale_max=2.5, augment=True, sample_q=2304, repeat=50)
    sides = set()
    for i in range(50):
        item = ds[i]
        assert item["inp"].shape == (3, 48, 48) and item["coord"].shape == (2304, 2) and item["gt"].shape == (2304, 3)
        side = round(2 / item["cell"][0, 0].item())
        assert 48 <= side <= 120 and torch.allclose(item["cell"][:, 1], item["cell"][:, 0])
        assert len({tuple(c) for c in item["coord"].tolist()}) == 2304  # without replacement
        assert item["inp"].min() >= -1 and item["inp"].max() <= 1
        sides.add(side)
    assert len(sides) > 10
    assert torch.equal(ds[7]["gt"], ds[7]["gt"])  # a sample is a pure function of (seed, epoch, index)
    ds.epoch = 1
    first = ds[7]["gt"]
    ds.epoch = 2
    assert not torch.equal(first, ds[7]["gt"])
    with pytest.raises(ParamsError, match="smaller than 192 px .* lower train.inp_size or train.scale_max"):
        DownsampledPatches(images, inp_size=48, scale_min=1, scale_max=4, augment=False, sample_q=10)


def test_paired_patches_supervise_every_pixel():
    hr = [torch.round(random_image(60, 64) * 255).to(torch.uint8)]
    lr = [hr[0][:, ::2, ::2].contiguous()]
    item = PairedPatches(hr, lr, scale=2, inp_size=12, augment=False)[0]
    assert item["inp"].shape == (3, 12, 12) and item["gt"].shape == (24 * 24, 3)


def test_moved_aside_runs_go_once_the_new_run_saves_its_first_epoch(tmp_path, monkeypatch):
    import liif.train.loop

    images = [torch.round(random_image(80, 80) * 255).to(torch.uint8)]
    a, b = tiny_config(epochs=2), tiny_config(epochs=2, lr=5e-4)
    fit(a, *tiny_sets(a, images), tmp_path, device="cpu")
    aside = tmp_path / "superseded" / config_hash(a)
    seen, train_one_epoch = {}, liif.train.loop.train_one_epoch

    def spy(*args, epoch, **kwargs):
        seen[epoch] = sorted(p.name for p in aside.iterdir()) if aside.is_dir() else None
        return train_one_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(liif.train.loop, "train_one_epoch", spy)
    fit(b, *tiny_sets(b, images), tmp_path, device="cpu")
    assert seen[1] == ["epoch-best.pth", "epoch-last.pth", "history.tsv", "summary.json"]  # kept during epoch 1
    assert seen[2] is None and not (tmp_path / "superseded").exists()  # gone once B saved epoch 1
    assert read_checkpoint(tmp_path / "epoch-last.pth")["metadata"]["config_hash"] == config_hash(b)


def test_training_reduces_the_loss_and_writes_checkpoints(tmp_path):
    images = [torch.round(random_image(80, 80, seed=i) * 255).to(torch.uint8) for i in range(2)]
    summary = fit(tiny_config(epochs=6), *tiny_sets(tiny_config(), images), tmp_path, device="cpu")
    history = [l.split("\t") for l in (tmp_path / "history.tsv").read_text().splitlines()[1:]]
    assert len(history) == 6 and float(history[-1][1]) < float(history[0][1])
    assert summary["epochs"] == 6
    assert {p.name for p in tmp_path.glob("*.pth")} == {"epoch-last.pth", "epoch-best.pth"}


def test_changed_configuration_is_not_resumed(tmp_path):
    images = [torch.round(random_image(80, 80) * 255).to(torch.uint8)]
    fit(tiny_config(epochs=1), *tiny_sets(tiny_config(), images), tmp_path, device="cpu")
    other = tiny_config(epochs=1, lr=5e-4)
    fit(other, *tiny_sets(other, images), tmp_path, device="cpu")
    assert read_checkpoint(tmp_path / "epoch-last.pth")["metadata"]["config_hash"] == config_hash(other)


def test_variants_override_the_base_and_see_base_changes():
    params = study_params()
    assert resolve_variant(params, "liif-c")["model"]["args"]["cell_decode"] is False
    assert resolve_variant(params, "liif-x3")["train"]["scale_min"] == 3
    assert resolve_variant(params, "upsample-x4")["model"] == {
        "name": "fixed-scale",
        "args": {"encoder": params["model"]["encoder"], "scale": 4},
    }
    changed = apply_profile(params, {"model": {"feat_unfold": False}})
    assert resolve_variant(changed, "liif-c")["model"]["args"]["feat_unfold"] is False
    assert resolve_variant(changed, "liif")["model"]["args"]["feat_unfold"] is False
    assert resolve_variant(changed, "metasr") == resolve_variant(params, "metasr")
    with pytest.raises(ParamsError, match="'nope' is not in params.yaml variants"):
        resolve_variant(params, "nope")


def test_make_training_sets_reads_the_folders_the_recipe_names(tmp_path):
    from liif.data.layout import PreparedData
    from liif.train.patches import load_images, make_training_sets

    prepared = PreparedData(tmp_path)
    write_tree(prepared, "photos", {"train": 3, "test": 2})
    write_tree(prepared, "valset", {"test": 4}, seed=100)
    params = {
        "model": dict(TINY_MODEL_SECTION),
        "train": {
            **tiny_config()["train"],
            "dataset": "photos",
            "val_dataset": "valset",
            "val_images": 2,
            "inp_size": 12,
        },
        "variants": {"liif": {}, "up": {"model": {"name": "fixed-scale", "scale": 2}}},
    }
    del params["train"]["patches"]
    train_hr, val_hr = load_images(prepared.hr("photos", "train")), load_images(prepared.hr("valset", "test"))
    liif_train, liif_val = make_training_sets(resolve_variant(params, "liif"), prepared)
    assert isinstance(liif_train, DownsampledPatches) and len(liif_train) == 3 * 4 and len(liif_val) == 2 * 2
    assert all(torch.equal(a, b) for a, b in zip(liif_train.images, train_hr, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(liif_val.images, val_hr[:2], strict=True))  # first val_images
    up_train, up_val = make_training_sets(resolve_variant(params, "up"), prepared)
    assert isinstance(up_train, PairedPatches) and up_train.scale == 2
    assert all(torch.equal(a, b) for a, b in zip(up_train.lr, load_images(prepared.lr("photos", "train", 2))))
    assert all(torch.equal(a, b) for a, b in zip(up_val.hr, val_hr[:2], strict=True))


def test_a_fixed_scale_patch_larger_than_an_lr_image_is_one_line_naming_it_and_the_key(tmp_path, capsys):
    """The LR images of write_tree are 32x36: a 48-pixel patch cannot be cut from them."""
    from liif.data.layout import PreparedData
    from liif.errors import run_stage
    from liif.train.patches import make_training_sets

    prepared = PreparedData(tmp_path)
    write_tree(prepared, "photos", {"train": 2, "test": 1})
    params = {
        "model": {**TINY_MODEL_SECTION, "name": "fixed-scale", "scale": 2},
        "train": {**tiny_config()["train"], "dataset": "photos", "inp_size": 48},
        "variants": {"up": {}},
    }
    del params["train"]["patches"]
    config = resolve_variant(params, "up")
    assert run_stage("train", lambda: make_training_sets(config, prepared), argv=["--config", "up.json"]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("train@")]  # besides the loading bars
    assert "Traceback" not in err
    lr_file = prepared.lr("photos", "train", 2) / "train0x2.png"
    assert said == [
        f"train@up: {lr_file} (32x36) is smaller than the 48x48 LR patch train.inp_size asks for: set "
        "train.inp_size to 32 or less for this variant, or leave the image out of the dataset"
    ]


def test_a_finished_run_is_retrained_when_its_training_data_changes(tmp_path):
    """DVC re-runs train@v after a change to the data or code; resuming the finished run would keep stale weights."""
    from liif.data.layout import PreparedData
    from liif.data.prepare import write_manifest
    from liif.train.loop import train_variant

    prepared = PreparedData(tmp_path / "prepared")
    write_tree(prepared, "photos", {"train": 2, "test": 1})
    config = {**tiny_config(epochs=1), "train": {**tiny_config(epochs=1)["train"], "dataset": "photos"}}
    runtime = CPU_RUNTIME
    out = tmp_path / "model"
    train_variant(config, prepared=prepared, out_dir=out, runtime=runtime)
    first = read_checkpoint(out / "epoch-last.pth")
    train_variant(config, prepared=prepared, out_dir=out, runtime=runtime)  # nothing changed: resumed, finished
    again = read_checkpoint(out / "epoch-last.pth")
    assert all(torch.equal(first["state_dict"][k], again["state_dict"][k]) for k in first["state_dict"])
    image = prepared.hr("photos", "train") / "train0.png"
    image.write_bytes((prepared.hr("photos", "train") / "train1.png").read_bytes())  # the data changed
    write_manifest(prepared.dataset("photos"), prepared.manifest("photos"))
    train_variant(config, prepared=prepared, out_dir=out, runtime=runtime)
    retrained = read_checkpoint(out / "epoch-last.pth")
    assert retrained["metadata"]["inputs"] != first["metadata"]["inputs"]
    assert not (out / "superseded").exists()  # the stale run, moved aside, went once the new one saved an epoch
    assert any(not torch.equal(first["state_dict"][k], retrained["state_dict"][k]) for k in first["state_dict"])


def test_stale_temporaries_and_orphaned_runs_are_cleaned_at_start(tmp_path, monkeypatch):
    images = [torch.round(random_image(80, 80) * 255).to(torch.uint8)]
    (tmp_path / ".epoch-last.pth.1a2b3c4d.tmp").write_bytes(b"half a checkpoint")  # a kill during a save
    monkeypatch.chdir(tmp_path)  # the MLflow store lives at the repository root (here: tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    tracking = {"enabled": True, "experiment": "liif-repro"}
    import mlflow

    from liif.tracking import Tracker

    Tracker(run_name="first", **tracking).end()  # creates the store and the experiment
    client = mlflow.MlflowClient()
    orphan = client.create_run(client.get_experiment_by_name("liif-repro").experiment_id).info  # then killed
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mlflow-run.txt").write_text(orphan.run_id + "\n")
    (tmp_path / "model" / ".epoch-last.pth.1a2b3c4d.tmp").write_bytes(b"half")
    fit(tiny_config(epochs=1), *tiny_sets(tiny_config(), images), tmp_path / "model", device="cpu", tracking=tracking)
    assert not list((tmp_path / "model").glob(".*.tmp"))
    assert client.get_run(orphan.run_id).info.status == "KILLED"
    summary = json.loads((tmp_path / "model" / "summary.json").read_text())
    assert summary["mlflow_run_id"] != orphan.run_id
    assert client.get_run(summary["mlflow_run_id"]).info.status == "FINISHED"
    assert not (tmp_path / "model" / "mlflow-run.txt").exists()  # the run ended: nothing left to close


def test_mixed_precision_is_part_of_the_identity_and_trains(tmp_path):
    params = study_params()
    bf16 = apply_profile(params, {"train": {"amp": "bf16"}})
    assert config_hash(resolve_variant(bf16, "liif")) != config_hash(resolve_variant(params, "liif"))
    images = [torch.round(random_image(80, 80) * 255).to(torch.uint8)]
    config = tiny_config(epochs=1, amp="bf16")  # autocast runs on CPU too (fp16 adds a gradient scaler)
    summary = fit(config, *tiny_sets(config, images), tmp_path / "bf16", device="cpu")
    assert summary["epochs"] == 1 and math.isfinite(summary["final_loss"])
    fp32 = tiny_config(epochs=1)
    fit(fp32, *tiny_sets(fp32, images), tmp_path / "fp32", device="cpu")
    a, b = (read_checkpoint(tmp_path / d / "epoch-last.pth")["state_dict"] for d in ("bf16", "fp32"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # autocast really ran


def test_loader_batches_are_the_documented_function_of_seed_and_epoch():
    """Pinned: epoch e's order is torch.randperm(n) seeded with seed * 100003 + e, items made at epoch e, as the
    inline loop before the DataLoader did (the default profile's weights are bit-identical across the change)."""
    from liif.train.loop import make_loader

    images = [torch.round(random_image(70, 75, seed=i) * 255).to(torch.uint8) for i in range(3)]
    config = tiny_config()
    train, _ = tiny_sets(config, images)
    loader = make_loader(train, batch_size=4, seed=7, shuffle=True, workers=0)
    for epoch in (1, 3):
        loader.batch_sampler.set_epoch(epoch)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(7 * 100_003 + epoch)).tolist()
        train.epoch = epoch
        for start, batch in zip(range(0, len(train), 4), loader, strict=True):
            items = [train[i] for i in order[start : start + 4]]
            for key in batch:
                assert torch.equal(batch[key], torch.stack([item[key] for item in items]))
