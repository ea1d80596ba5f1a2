"""The divergence guard: an epoch whose loss says the run diverged stops training before it is saved.

A run diverges (``divergence``) on a non-finite loss, a loss above ``LOSS_CEILING``, or a loss level over
``EXPLOSION_FACTOR`` times the run's lowest: an epoch's loss when an epoch holds ``WINDOW_SAMPLES`` samples or
more, else the median of the last epochs that hold that many, so that a few-sample epoch's noise never stops a
healthy run. It then stops with ``DivergedError`` (``stop_diverged``) before saving that epoch: ``epoch-last.pth``
stays the last good epoch, the MLflow run ends FAILED, and ``diverged.json`` tells evaluation to refuse the model
(``liif.eval.scores.diverged``) until a run saves an epoch again.

Healthy L1 on normalised RGB starts below about 1 and falls noisily: on 11 healthy 100-epoch runs of the default
profile an epoch's loss rose at most 1.33x over the epoch before and 1.59x over the lowest before it
(tests/unit/test_divergence.py holds the noisiest); runs that diverged went 0.47 -> 14.6 (lr 0.05: 31x), 0.07 -> 6.2
(a stretched schedule: 88x) and to 1.27e27 (lr 1000). An epoch of few samples is a noisy mean: one photograph at
batch 1 (1 sample an epoch) swings 0.16 to 0.66 while it learns, so its loss level is the median of the last
epochs holding WINDOW_SAMPLES samples; on the healthy few-sample runs of tests/data/few-sample-curves.json that
median rose at most 1.5x over its lowest.
"""

import json
import math
from pathlib import Path

import numpy as np

from liif.errors import UserError
from liif.files import DIVERGED, LAST, atomic_write
from liif.train import distributed
from liif.train.track import fail_tracking

EXPLOSION_FACTOR = 4.0  # a loss level above this many times the run's lowest level: diverged
WINDOW_SAMPLES = 64  # the samples a loss level averages over at least (the default's 72 an epoch: one epoch)
LOSS_CEILING = 10.0  # ... or above this at all: L1 against targets in [-1, 1] is about 0.5 for a model predicting 0


class DivergedError(UserError):
    """Training diverged; the message is one line naming the variant, the epoch, the loss and what to change."""


def loss_window(samples: int) -> int:
    """The epochs a loss level is the median of: enough to hold ``WINDOW_SAMPLES`` of ``samples`` an epoch."""
    return max(1, math.ceil(WINDOW_SAMPLES / max(samples, 1)))


def divergence(loss: float, losses: list[float], *, samples: int) -> str | None:
    """How an epoch of mean loss ``loss`` over ``samples`` samples, after epochs of mean losses ``losses``,
    diverged ("is not finite", "is above ...", "... is over ..."), or None for a healthy epoch: a non-finite
    loss, a loss above ``LOSS_CEILING``, or a loss level above ``EXPLOSION_FACTOR`` times the lowest level
    before it. The level is the median loss of the last ``loss_window(samples)`` epochs: the epoch's own loss
    when it holds ``WINDOW_SAMPLES`` samples or more, a median when a single epoch is too noisy to judge."""
    if not math.isfinite(loss):
        return "is not finite"
    if loss > LOSS_CEILING:
        return f"is above {LOSS_CEILING:g} (a model predicting 0 scores about 0.5 on colours in [-1, 1])"
    k = loss_window(samples)
    if len(losses) < k:  # a level needs a full window now and one before it
        return None
    series = np.asarray([*losses, loss], dtype=np.float64)
    levels = np.median(np.lib.stride_tricks.sliding_window_view(series, k), axis=1)
    now, lowest = float(levels[-1]), float(levels[:-1].min())
    if now <= EXPLOSION_FACTOR * lowest:
        return None
    if k == 1:
        return f"is over {EXPLOSION_FACTOR:g}x the lowest epoch loss so far ({lowest:.4g})"
    return (
        f"(median of the last {k} epochs {now:.4g}, {samples} samples each) is over {EXPLOSION_FACTOR:g}x "
        f"the lowest such median so far ({lowest:.4g})"
    )


def remedy(config: dict) -> str:
    """What to change in a recipe that diverged."""
    t = config["train"]
    fix = (
        f"lower train.lr (now {t['lr']:g}) or decay it sooner (train.milestones {t['milestones']}, "
        f"train.gamma {t['gamma']:g})"
    )
    if t.get("amp") == "fp16":
        fix += ", or train with train.amp: bf16 or fp32"
    return f"{fix}, then rerun `dvc repro train@{config['variant']}`"


def write_record(out_dir: Path, config: dict, *, epoch: int, loss: float, rule: str, metadata: dict):
    """``diverged.json``: what evaluation and the report refuse the model for, in plain JSON."""
    record = {
        "variant": config["variant"],
        "config_hash": metadata["config_hash"],
        "inputs": metadata["inputs"],
        "epoch": epoch,
        "loss": loss if math.isfinite(loss) else str(loss),  # JSON has no NaN or infinity
        "rule": rule,
        "remedy": remedy(config),
        "last_good_epoch": epoch - 1,
    }
    with atomic_write(out_dir / DIVERGED) as f:
        f.write((json.dumps(record, indent=2) + "\n").encode())


def stop_diverged(config: dict, out_dir: Path, *, epoch: int, loss: float, rule: str, metadata: dict, tracker, ranks):
    """Stop a run whose epoch ``epoch`` diverged (every rank calls it): that epoch is not saved, so
    ``epoch-last.pth`` stays the last good one; rank 0 writes ``diverged.json`` and ends the MLflow run
    FAILED. Raises ``DivergedError``, whose message is the one line the train stage prints."""
    kept = f"{LAST} stays at epoch {epoch - 1}" if epoch > 1 else "no epoch was saved"
    message = f"{config['variant']} diverged at epoch {epoch}: loss {loss:.4g} {rule}; {remedy(config)} ({kept})"
    if ranks.main:
        write_record(out_dir, config, epoch=epoch, loss=loss, rule=rule, metadata=metadata)
        fail_tracking(tracker, out_dir=out_dir, epoch=epoch, loss=loss)
    distributed.stop()
    raise DivergedError(message)
