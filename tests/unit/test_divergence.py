"""A run that diverges fails loudly: it stops at the epoch that diverged without saving it (``epoch-last.pth``
stays the last good epoch), leaves ``diverged.json`` so evaluation refuses the model, ends its MLflow run
FAILED, and the train stage exits with one line saying what to change. Healthy curves never trigger it."""

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import random_image, saved_epoch, tiny_config, tiny_sets

import liif.train.loop
from liif.config.variants import config_hash
from liif.eval.scores import diverged
from liif.files import DIVERGED as DIVERGED_MARKER
from liif.models.checkpoint import read_checkpoint
from liif.train.divergence import EXPLOSION_FACTOR, DivergedError, divergence, loss_window
from liif.train.loop import fit

DEFAULT_SAMPLES = 72  # an epoch of the default profile: 9 photographs, repeat 8


# Epoch losses (4 digits) of healthy 100-epoch runs of the default profile (params.yaml, CPU, sample suite):
# liif, and the noisiest of the 11 recipes run: liif-c, upsample-x2 and upsample-x4 (its epochs rise up to
# 1.33x over the one before and 1.59x over the lowest before them), and liif with the paper-like recipe of
# the recipe sweep's start (experiments/recipe-sweep: lr 2e-3, milestones [70, 90], gamma 0.5, no channel shuffle).
HEALTHY_TEXT = {
    "liif": """
        0.36 0.263 0.1622 0.158 0.1883 0.149 0.1403 0.1403 0.1472 0.1244 0.1302 0.1238 0.1389 0.1586 0.1293
        0.1303 0.1405 0.132 0.1222 0.1019 0.0899 0.1024 0.0977 0.08788 0.09085 0.09917 0.09762 0.1005 0.09967
        0.09254 0.09421 0.0872 0.08748 0.09071 0.09142 0.08818 0.0931 0.09764 0.08901 0.09183 0.07674 0.08067
        0.0859 0.0734 0.09517 0.08335 0.07878 0.0797 0.08093 0.08304 0.0823 0.094 0.08226 0.09233 0.07973
        0.08168 0.08772 0.07859 0.07739 0.07382 0.0723 0.06821 0.06625 0.06541 0.05843 0.0635 0.06536 0.0656
        0.05884 0.0626 0.06188 0.05827 0.05839 0.06135 0.061 0.05568 0.06805 0.06246 0.06571 0.05944 0.06023
        0.05511 0.05586 0.05674 0.05575 0.05219 0.05904 0.05134 0.05391 0.05402 0.04992 0.05297 0.05242 0.05586
        0.05512 0.05126 0.05242 0.05261 0.05686 0.05098
    """,
    "liif-c": """
        0.4208 0.3325 0.2713 0.2086 0.1927 0.1787 0.1764 0.1452 0.1767 0.1352 0.1256 0.1193 0.1142 0.1148 0.1096
        0.1168 0.108 0.1053 0.1048 0.09579 0.09204 0.09052 0.1204 0.101 0.09394 0.09845 0.1016 0.1033 0.1055
        0.09452 0.09739 0.09207 0.09351 0.1034 0.09402 0.08821 0.09886 0.09179 0.0891 0.1013 0.08566 0.08438
        0.09102 0.08806 0.1031 0.09249 0.08757 0.08264 0.07573 0.08174 0.08548 0.09482 0.07946 0.08533 0.07548
        0.06957 0.07825 0.08201 0.09857 0.09984 0.09079 0.07519 0.07261 0.0687 0.05717 0.06155 0.06268 0.06233
        0.05942 0.06362 0.06221 0.05912 0.05978 0.06141 0.06171 0.05623 0.06682 0.06135 0.06608 0.06105 0.06312
        0.05704 0.05563 0.05638 0.05697 0.05195 0.05824 0.05116 0.05406 0.05411 0.04987 0.05359 0.05219 0.05634
        0.05545 0.05206 0.0524 0.05315 0.05703 0.05108
    """,
    "upsample-x2": """
        0.3275 0.1546 0.1382 0.1102 0.09528 0.1191 0.101 0.08551 0.0788 0.07686 0.06629 0.06753 0.07711 0.07873
        0.09841 0.08052 0.07754 0.06818 0.07304 0.07019 0.08581 0.08674 0.08493 0.07381 0.0761 0.07796 0.07393
        0.0696 0.06732 0.06282 0.0802 0.07416 0.07256 0.06406 0.0675 0.07079 0.0802 0.07856 0.07422 0.0699
        0.06499 0.05888 0.05809 0.05726 0.06186 0.05314 0.06956 0.06624 0.074 0.05915 0.0618 0.07626 0.07497
        0.07616 0.074 0.07384 0.0824 0.07074 0.07274 0.06844 0.05748 0.04629 0.05009 0.04593 0.04843 0.04504
        0.04058 0.04269 0.04794 0.04751 0.04256 0.04635 0.0445 0.04348 0.04398 0.04547 0.0448 0.04332 0.0438
        0.04385 0.04487 0.04698 0.04822 0.04281 0.04319 0.04739 0.04158 0.04491 0.04668 0.04164 0.04036 0.04527
        0.04018 0.04424 0.04215 0.04109 0.0394 0.03959 0.04371 0.04068
    """,
    "upsample-x4": """
        0.3483 0.2521 0.1944 0.1851 0.1806 0.1698 0.1545 0.1375 0.1418 0.1124 0.1132 0.139 0.1527 0.1478 0.1275
        0.1196 0.1096 0.11 0.1026 0.1096 0.1099 0.1138 0.1001 0.105 0.1003 0.1014 0.1012 0.09927 0.1165 0.09906
        0.09712 0.09861 0.09364 0.09114 0.09843 0.09676 0.1088 0.1451 0.123 0.1196 0.1065 0.1146 0.1155 0.1128
        0.1127 0.1109 0.1164 0.1079 0.1124 0.1073 0.0984 0.1106 0.1191 0.1169 0.1064 0.1063 0.1069 0.09601
        0.09943 0.09804 0.09806 0.08561 0.08242 0.08409 0.07938 0.07714 0.07487 0.08498 0.08113 0.07591 0.08135
        0.07334 0.08379 0.07625 0.07586 0.08055 0.07966 0.07217 0.08538 0.07883 0.08056 0.08115 0.08288 0.07597
        0.07907 0.0817 0.07725 0.07791 0.07194 0.0724 0.07308 0.07649 0.0757 0.07647 0.07629 0.0717 0.07037
        0.07264 0.07588 0.07527
    """,
    "liif-paper-like-recipe": """
        0.3729 0.2235 0.1705 0.1687 0.1318 0.121 0.1182 0.1118 0.1165 0.1018 0.09532 0.09653 0.09698 0.1084
        0.09957 0.09162 0.0965 0.09947 0.08643 0.07751 0.08412 0.07975 0.08261 0.08493 0.07445 0.08647 0.08636
        0.08786 0.07652 0.07653 0.07284 0.07562 0.07604 0.07602 0.07807 0.0776 0.08063 0.0862 0.0876 0.07812
        0.07296 0.07637 0.0806 0.06676 0.07023 0.07098 0.07377 0.06586 0.06752 0.06834 0.06406 0.07495 0.06667
        0.071 0.0661 0.06367 0.06792 0.06725 0.07174 0.07319 0.07131 0.07071 0.07467 0.0739 0.06915 0.07334
        0.0804 0.07502 0.07004 0.07488 0.06879 0.06127 0.05944 0.06157 0.058 0.05437 0.06562 0.05982 0.06227
        0.0574 0.05899 0.05735 0.05502 0.05877 0.06139 0.05414 0.06275 0.05814 0.05912 0.05765 0.05006 0.05312
        0.05212 0.05545 0.05375 0.05154 0.05054 0.0509 0.0551 0.05074
    """,
}


HEALTHY = {name: [float(x) for x in text.split()] for name, text in HEALTHY_TEXT.items()}


def images():
    return [torch.round(random_image(80, 80, seed=i) * 255).to(torch.uint8) for i in range(2)]


def train(config, out, **kwargs):
    return fit(config, *tiny_sets(config, images()), out, device="cpu", **kwargs)


def epoch_ratios(losses: list[float]) -> tuple[float, float]:
    """The largest rise of an epoch's loss over the epoch before, and over the lowest epoch before it."""
    steps = [b / a for a, b in zip(losses, losses[1:])]
    lows = [loss / min(losses[:i]) for i, loss in enumerate(losses) if i]
    return max(steps, default=1.0), max(lows, default=1.0)


def test_the_rule_stops_the_divergences_seen_and_nothing_healthy():
    n = DEFAULT_SAMPLES
    assert divergence(math.nan, [0.5], samples=n) and divergence(math.inf, [], samples=1)
    assert divergence(-math.inf, [0.3], samples=n)
    assert divergence(1.27e27, [], samples=n)  # lr 1000, from its first epoch
    assert divergence(14.6, [0.47], samples=n)  # lr 0.05 on the paper profile
    assert "lowest epoch loss so far (0.07)" in divergence(6.2, [0.4, 0.07, 0.09], samples=n)  # a stretched schedule
    assert divergence(0.47 * EXPLOSION_FACTOR * 1.01, [0.6, 0.47, 0.5], samples=n)
    assert divergence(0.47 * EXPLOSION_FACTOR * 0.99, [0.6, 0.47, 0.5], samples=n) is None
    assert divergence(0.9, [], samples=n) is None  # a first epoch of an untrained model


def lr_2e3_stretched_4x() -> list[float]:
    """The epoch losses of LIIF at lr 2e-3 stretched 4x as recorded (README, learning curves): 0.048 to 0.066
    up to epoch 493 with its lowest 0.04539, then a climb to 0.089 at 497 and 0.317 at 498."""
    g = torch.Generator().manual_seed(0)
    early = torch.linspace(0.6, 0.066, 60).tolist()
    plateau = (0.048 + 0.018 * torch.rand(493 - 60, generator=g)).tolist()
    plateau[300] = 0.04539
    return [*early, *plateau, 0.068, 0.072, 0.079, 0.089, 0.317]


def first_stop(losses: list[float], samples: int) -> int | None:
    return next((i + 1 for i, loss in enumerate(losses) if divergence(loss, losses[:i], samples=samples)), None)


def test_the_diverging_default_runs_stop_at_the_epoch_they_did():
    """At the default's samples an epoch a loss level is one epoch's loss: the rule stops what it stopped."""
    losses = lr_2e3_stretched_4x()
    assert len(losses) == 498 and min(losses) == 0.04539
    assert first_stop(losses, DEFAULT_SAMPLES) == 498
    rule = divergence(losses[-1], losses[:-1], samples=DEFAULT_SAMPLES)
    assert rule == "is over 4x the lowest epoch loss so far (0.04539)"


def test_few_sample_runs_that_learn_never_trigger_and_ones_that_diverge_still_stop():
    """Recorded healthy runs of 1, 3 and 8 samples an epoch (tests/data/few-sample-curves.json, the guard off):
    a ratio of single epochs stopped two of them while validation PSNR climbed; levels never do. A level that
    explodes afterwards is still stopped, a few epochs later: half a window."""
    runs = json.loads((Path(__file__).resolve().parents[1] / "data" / "few-sample-curves.json").read_text())
    assert {name: run["samples"] for name, run in runs.items()} == {
        "one-photo-batch-1": 1,
        "one-photo-batch-1-repeat-8": 8,
        "tiny-4000-epochs": 3,
    }
    assert first_stop(runs["one-photo-batch-1"]["loss"], DEFAULT_SAMPLES) == 78  # a ratio of single epochs
    assert first_stop(runs["tiny-4000-epochs"]["loss"], DEFAULT_SAMPLES) == 2986
    for name, run in runs.items():
        losses, psnr = run["loss"], run["val_psnr"]
        assert psnr[-1] > psnr[0] + 5, name  # they learn
        assert first_stop(losses, run["samples"]) is None, name
        k = loss_window(run["samples"])
        exploded = [*losses, *[2.0] * k]  # under LOSS_CEILING: the ratio rule alone
        assert len(losses) < first_stop(exploded, run["samples"]) <= len(losses) + k // 2 + 1, name
        rule = divergence(exploded[-1], exploded[:-1], samples=run["samples"])
        assert rule.startswith(f"(median of the last {k} epochs 2, {run['samples']} samples each) is over 4x"), name


def test_healthy_curves_never_trigger_the_rule():
    assert len(HEALTHY) == 5 and all(len(losses) == 100 for losses in HEALTHY.values())
    for name, losses in HEALTHY.items():
        assert first_stop(losses, DEFAULT_SAMPLES) is None, name
        step, low = epoch_ratios(losses)
        assert low < EXPLOSION_FACTOR / 2, f"{name}: an epoch {low:.2f}x its run's lowest loss"


def test_a_healthy_tiny_run_never_triggers(tmp_path):
    summary = train(tiny_config(epochs=8), tmp_path)
    assert summary["epochs"] == 8 and not (tmp_path / DIVERGED_MARKER).exists()
    losses = [h["loss"] for h in read_checkpoint(tmp_path / "epoch-last.pth")["train_state"]["history"]]
    assert epoch_ratios(losses)[1] < 1.5


def test_a_nan_loss_stops_the_run_at_its_first_step_and_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    """From epoch 3 the model computes NaN: the run stops after that epoch's first step, saves nothing of it,
    leaves the marker and ends its MLflow run FAILED."""
    monkeypatch.chdir(tmp_path)  # the MLflow store lives at the repository root (here: tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    steps, train_one_epoch, train_step = [], liif.train.loop.train_one_epoch, liif.train.loop.train_step

    def poisoned_epoch(model, *args, epoch, **kwargs):
        if epoch == 3:
            with torch.no_grad():
                model.decoder.layers[-1].bias.fill_(math.nan)
        return train_one_epoch(model, *args, epoch=epoch, **kwargs)

    def counted_step(*args, **kwargs):
        steps.append(None)
        return train_step(*args, **kwargs)

    monkeypatch.setattr(liif.train.loop, "train_one_epoch", poisoned_epoch)
    monkeypatch.setattr(liif.train.loop, "train_step", counted_step)
    config, out = tiny_config(epochs=5), tmp_path / "model"
    with pytest.raises(DivergedError) as raised:
        train(config, out, tracking={"enabled": True, "experiment": "liif-repro"})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("tiny diverged at epoch 3: loss nan is not finite; lower train.lr (now 0.001)")
    assert message.endswith("then rerun `dvc repro train@tiny` (epoch-last.pth stays at epoch 2)")
    assert len(steps) == 2 + 2 + 1  # two steps an epoch; epoch 3 stopped at its first
    assert saved_epoch(out / "epoch-last.pth") == 2 and len((out / "history.tsv").read_text().splitlines()) == 3
    marker = diverged(out, config_hash(config))
    assert marker == json.loads((out / DIVERGED_MARKER).read_text())  # plain JSON: no NaN literal
    assert {k: marker[k] for k in ("variant", "config_hash", "epoch", "loss", "last_good_epoch")} == {
        "variant": "tiny",
        "config_hash": config_hash(config),
        "epoch": 3,
        "loss": "nan",
        "last_good_epoch": 2,
    }
    assert diverged(out, "another") is None
    import mlflow

    run_id = read_checkpoint(out / "epoch-last.pth")["train_state"]["mlflow_run_id"]
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FAILED"
    assert not (out / "mlflow-run.txt").exists()


def test_an_exploding_learning_rate_is_caught_and_a_fixed_recipe_replaces_the_marker(tmp_path, monkeypatch):
    """The learning rate jumps 1000-fold after epoch 2 (gamma 1000): epoch 3's loss explodes. A fixed recipe
    moves the diverged run aside (with its marker) and, once it has saved an epoch, both are gone."""
    config = tiny_config(epochs=4, milestones=[2], gamma=1000.0)
    with pytest.raises(DivergedError, match=r"^tiny diverged at epoch 3: loss \d.*train\.gamma 1000\b"):
        train(config, tmp_path)
    assert saved_epoch(tmp_path / "epoch-last.pth") == 2 and diverged(tmp_path, config_hash(config))["epoch"] == 3

    fixed, seen = tiny_config(epochs=2), []
    aside = tmp_path / "superseded" / config_hash(config)
    train_one_epoch = liif.train.loop.train_one_epoch

    def spy(*args, epoch, **kwargs):
        seen.append(((tmp_path / DIVERGED_MARKER).exists(), (aside / DIVERGED_MARKER).exists()))
        return train_one_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(liif.train.loop, "train_one_epoch", spy)
    train(fixed, tmp_path)
    assert seen == [(False, True), (False, False)]  # moved aside with its run, then gone with it
    assert diverged(tmp_path) is None and not (tmp_path / "superseded").exists()


def test_a_stale_marker_goes_when_any_run_saves_an_epoch(tmp_path):
    config = tiny_config(epochs=1)
    (tmp_path / DIVERGED_MARKER).write_text(json.dumps({"config_hash": "0123", "epoch": 1}))
    train(config, tmp_path)
    assert not (tmp_path / DIVERGED_MARKER).exists()
