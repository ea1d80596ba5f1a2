"""Checkpoints: our files and the released ones load with their model spec and train state; truncated, foreign,
pickled, forged, mismatched or non-finite files are refused in one line saying what to do."""

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
from conftest import TINY_ENCODER, tiny_liif

from liif.encoders import RDN
from liif.models import LIIF, FixedScaleSR, MetaSR, build_model
from liif.models.checkpoint import CheckpointError, load_checkpoint, official_to_spec, save_checkpoint


def test_round_trip_keeps_weights_spec_and_train_state(tmp_path):
    model = tiny_liif(cell_decode=False)
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, model=model, train_state={"epoch": 3, "step": 12}, metadata={"variant": "liif-c"})
    loaded, raw = load_checkpoint(path)
    assert raw["format"] == "liif-repro" and raw["train_state"]["epoch"] == 3
    assert isinstance(loaded, LIIF) and loaded.cell_decode is False
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


@pytest.mark.parametrize(
    "model", [MetaSR(encoder=TINY_ENCODER, predictor_hidden=8), FixedScaleSR(encoder=TINY_ENCODER, scale=3)]
)
def test_round_trip_other_models(tmp_path, model):
    save_checkpoint(tmp_path / "m.pth", model=model)
    loaded, _ = load_checkpoint(tmp_path / "m.pth")
    assert type(loaded) is type(model)


def test_released_fixture_loads_with_the_documented_layout(fixtures_dir):
    raw = torch.load(fixtures_dir / "edsr-baseline-liif.pth", weights_only=True)
    sd = raw["model"]["sd"]
    assert len(sd) == 82 and sum(v.numel() for v in sd.values()) == 1_567_323
    model, loaded = load_checkpoint(fixtures_dir / "edsr-baseline-liif.pth")
    assert loaded["format"] == "official" and loaded["epoch"] == 1
    assert torch.equal(model.decoder.layers[0].weight, sd["imnet.layers.0.weight"])


def _official(model_entry):
    return {"model": model_entry, "epoch": 5}


def test_official_rdn_and_metasr_specs_map_to_our_models():
    rdn = official_to_spec(
        {
            "name": "liif",
            "args": {
                "encoder_spec": {"name": "rdn", "args": {"no_upsampling": True}},
                "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256]}},
                "cell_decode": False,
            },
        }
    )
    assert rdn["args"]["encoder"] == {
        "name": "rdn",
        "G0": 64,
        "kernel_size": 3,
        "n_blocks": 16,
        "n_convs": 8,
        "growth": 64,
    }
    assert rdn["args"]["cell_decode"] is False and rdn["args"]["decoder_hidden"] == [256, 256]
    # RDN-LIIF as released: 306 tensors, 22,320,835 values
    model = build_model(rdn | {"args": rdn["args"] | {"decoder_hidden": [256] * 4, "cell_decode": True}})
    assert len(model.state_dict()) == 306 and sum(v.numel() for v in model.state_dict().values()) == 22_320_835
    fixed = official_to_spec(
        {"name": "liif", "args": {"encoder_spec": {"name": "edsr-baseline", "args": {"scale": 2}}}}
    )
    assert fixed == {"name": "fixed-scale", "args": {"encoder": {"name": "edsr-baseline"}, "scale": 2}}
    meta = official_to_spec(
        {"name": "metasr", "args": {"encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}}}}
    )
    assert meta["name"] == "metasr"
    assert len(build_model(meta).state_dict()) == 76 - 4  # without the unused mean-shift layers


def test_official_file_with_our_names_loads(tmp_path):
    torch.manual_seed(0)
    model = MetaSR(encoder={"name": "edsr-baseline"})
    sd = {
        ("imnet." + k[len("decoder.") :] if k.startswith("decoder.") else k): v for k, v in model.state_dict().items()
    }
    sd["encoder.sub_mean.weight"] = torch.eye(3).view(3, 3, 1, 1)
    entry = {
        "name": "metasr",
        "args": {
            "encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}},
            "imnet_spec": {"name": "mlp", "args": {"hidden_list": [256]}},
        },
        "sd": sd,
    }
    torch.save(_official(entry), tmp_path / "metasr.pth")
    loaded, _ = load_checkpoint(tmp_path / "metasr.pth")
    assert torch.equal(loaded.decoder.layers[2].weight, model.decoder.layers[2].weight)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "cut.pth"
    save_checkpoint(path, model=tiny_liif())
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"cut\.pth: not a readable PyTorch checkpoint") as caught:
        load_checkpoint(path)
    assert str(caught.value).endswith(  # outside the pipeline: what to do, and the pipeline's way
        "; replace it with a complete copy (a pipeline checkpoint: `dvc checkout -f models/<variant>` restores "
        "the committed one, or delete it and run `dvc repro train@<variant>` to retrain)"
    )


@pytest.mark.parametrize("keep", [0.5, 0.99], ids=["half", "last-bytes-missing"])
def test_a_truncated_pipeline_checkpoint_says_how_to_restore_or_retrain_it(tmp_path, monkeypatch, keep):
    monkeypatch.chdir(tmp_path)
    path = Path("models") / "liif-c" / "epoch-last.pth"
    save_checkpoint(path, model=tiny_liif(), train_state={"epoch": 2})
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "models/liif-c/epoch-last.pth: not a readable PyTorch checkpoint, truncated or corrupted? ("
    )
    assert message.endswith(
        "; to recover, restore the committed checkpoint with `dvc checkout -f models/liif-c` (after "
        "`dvc pull models/liif-c` if the cache lacks it), or delete epoch-last.pth and run "
        "`dvc repro train@liif-c` to retrain"
    )


def test_foreign_files_are_reported(tmp_path):
    (tmp_path / "notes.pth").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="notes.pth: not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.pth")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: not a LIIF checkpoint"):
        load_checkpoint(tmp_path / "other.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_pickled_code_is_refused(tmp_path):
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"model": Payload()}, f)
    with pytest.raises(CheckpointError, match="evil.pth: refused"):
        load_checkpoint(tmp_path / "evil.pth")


def test_mismatched_weights_are_reported(tmp_path):
    path = tmp_path / "bad.pth"
    save_checkpoint(path, model=tiny_liif())
    raw = torch.load(path, weights_only=True)
    raw["model"]["args"]["cell_decode"] = False  # declares a 578-wide first layer, holds 580
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"bad\.pth: weights do not match .* other shapes"):
        load_checkpoint(path)
    raw["model"] = {"name": "nope", "args": {}}
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="unknown model 'nope'"):
        load_checkpoint(path)


def test_rdn_receptive_radius_counts_its_convs():
    assert RDN().receptive_radius == 2 + 16 * 8 + 1


def test_checkpoints_honour_the_umask_so_teammates_can_read_them(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "shared.pth", model=tiny_liif())
    finally:
        os.umask(old)
    assert (tmp_path / "shared.pth").stat().st_mode & 0o777 == 0o644  # mkstemp made it 0600
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pth"]


def test_a_forged_block_count_is_refused_before_any_module_is_built(tmp_path, capsys):
    """A small file declaring 300,000 residual blocks: refused from its tensor count in a moment, not after
    building 300,000 blocks (minutes and gigabytes)."""
    import time

    from liif.cli import main

    path = tmp_path / "forged.pth"
    save_checkpoint(path, model=tiny_liif())
    raw = torch.load(path, weights_only=True)
    raw["model"]["args"]["encoder"]["n_resblocks"] = 300_000
    raw["state_dict"] = {k: v[:1] for k, v in list(raw["state_dict"].items())[:4]}
    torch.save(raw, path)
    assert path.stat().st_size < 8000
    began = time.perf_counter()
    assert main(["info", str(path)]) == 2
    assert time.perf_counter() - began < 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"liif: error: {path}: declares a liif of at least 1,200,004 weight tensors (")
    assert err.endswith("but holds 4: a corrupted or forged model description; refused before building it\n")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_weights_are_refused_naming_the_first_bad_tensor(tmp_path, value):
    model = tiny_liif()
    with torch.no_grad():
        model.decoder.layers[2].weight[0, 0] = value
    save_checkpoint(tmp_path / "nan.pth", model=model)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(tmp_path / "nan.pth")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'nan.pth'}: tensor decoder.layers.2.weight holds NaN or infinite weights")
