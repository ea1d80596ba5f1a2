"""Training per spec section 3: L1 on normalised RGB, Adam, MultiStepLR, validation every epoch.

``train_variant`` trains one resolved variant from the prepared data; ``fit``
is the loop itself, on any pair of training and validation sets. It writes
into its output folder, atomically, after every epoch:
``epoch-last.pth`` (weights plus optimizer, scheduler and history),
``epoch-best.pth`` (best validation PSNR) and, every ``save_every`` epochs,
``epoch-<n>.pth``. Rerun after a kill, it resumes from ``epoch-last.pth`` and
ends with the same weights as a run that never stopped (data are a function
of seed, epoch and index; see ``liif.samples``). A checkpoint written under
another configuration, or from other training code or data (``train_inputs``),
is never resumed: the run starts over and says so. So when DVC re-runs
``train@v`` because, say, ``liif/resize.py`` changed, the model is retrained.
"""

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from liif.checkpoint import read_checkpoint, save_checkpoint
from liif.device import resolve_device
from liif.layout import PreparedData
from liif.models import build_model
from liif.samples import make_training_sets
from liif.tracking import Tracker
from liif.variants import config_hash


def batches(dataset, *, batch_size: int, epoch: int, seed: int, shuffle: bool):
    """Batches of an epoch in an order fixed by (seed, epoch)."""
    dataset.epoch = epoch if shuffle else 0
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)) if shuffle else range(n)
    order = list(order)
    for start in range(0, n, batch_size):
        items = [dataset[int(i)] for i in order[start : start + batch_size]]
        yield {key: torch.stack([item[key] for item in items]) for key in items[0]}


def psnr_normalised(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample RGB PSNR of normalised predictions, clamped to [0, 1] (validation, spec 3.1)."""
    pred = (pred * 0.5 + 0.5).clamp(0, 1)
    gt = gt * 0.5 + 0.5
    mse = (pred - gt).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


@torch.no_grad()
def validate(model, dataset, *, batch_size: int, device) -> float:
    model.eval()
    scores = []
    for batch in batches(dataset, batch_size=batch_size, epoch=0, seed=0, shuffle=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        scores.append(psnr_normalised(model(batch["inp"], batch["coord"], batch["cell"]), batch["gt"]).cpu())
    model.train()
    return torch.cat(scores).mean().item()


def _write_history(history: list[dict], out_dir: Path):
    lines = ["epoch\tloss\tval_psnr\tlr\tseconds"]
    lines += [f"{h['epoch']}\t{h['loss']:.6f}\t{h['val_psnr']:.4f}\t{h['lr']:.3e}\t{h['seconds']:.2f}" for h in history]
    (out_dir / "history.tsv").write_text("\n".join(lines) + "\n")


def train_inputs(config: dict, prepared: PreparedData) -> str:
    """A fingerprint of what the weights depend on besides the configuration: the training code (the
    source of every loaded ``liif`` module, which is what ``dvc.yaml`` lists for the stage) and the
    training data (the manifests of the datasets the recipe reads)."""
    digest = hashlib.sha256()
    for name in sorted(m for m in sys.modules if m == "liif" or m.startswith("liif.")):
        source = getattr(sys.modules[name], "__file__", None)
        if source:
            digest.update(name.encode() + b"\0" + Path(source).read_bytes())
    t = config["train"]
    for dataset in sorted({t["dataset"], t.get("val_dataset") or t["dataset"]}):
        digest.update(dataset.encode() + b"\0" + prepared.manifest(dataset).read_bytes())
    return digest.hexdigest()[:16]


def train_variant(config: dict, *, prepared: PreparedData, out_dir: str | Path, runtime: dict) -> dict:
    """Train (or resume, or skip when finished) one variant; returns the summary written to ``summary.json``.

    ``runtime`` is the ``params.yaml`` runtime section: how to run, never what is computed.
    """
    out_dir = Path(out_dir)
    if runtime["threads"]:
        torch.set_num_threads(runtime["threads"])
    tracking = runtime["tracking"]
    if config["train"] is None:  # Bicubic: nothing to learn, a parameterless checkpoint for evaluate
        out_dir.mkdir(parents=True, exist_ok=True)
        metadata = {"variant": config["variant"], "config_hash": config_hash(config)}
        save_checkpoint(out_dir / "epoch-last.pth", model=build_model(config["model"]),
                        train_state={"epoch": 0, "history": []}, metadata=metadata)  # fmt: skip
        tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"])
        tracker.log_params({"model": config["model"]})
        tracker.end()
        return _finish(out_dir, config, [], 0.0, tracker.run_id)
    train_set, val_set = make_training_sets(config, prepared)
    return fit(config, train_set, val_set, out_dir, device=runtime["device"], save_every=runtime["save_every"],
               tracking=tracking, inputs=train_inputs(config, prepared))  # fmt: skip


def fit(config: dict, train_set, val_set, out_dir: str | Path, *, device: str = "auto", save_every: int = 0,
        tracking: dict | None = None, inputs: str = "") -> dict:  # fmt: skip
    """The training loop of a resolved variant on the given sets.

    Resumes from ``epoch-last.pth`` when it was written for the same configuration and ``inputs``
    (a fingerprint of code and data, see ``train_inputs``); otherwise starts over.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):  # a kill during a checkpoint save left it; DVC would hash it
        stale.unlink()
    t = config["train"]
    digest = config_hash(config)
    torch.manual_seed(t["seed"])
    model = build_model(config["model"])
    metadata = {"variant": config["variant"], "config_hash": digest, "inputs": inputs}
    tracking = tracking or {"enabled": False, "experiment": ""}

    device = resolve_device(device)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=t["lr"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=t["milestones"], gamma=t["gamma"])
    history, best, start_epoch, run_id = [], -math.inf, 1, None

    last = out_dir / "epoch-last.pth"
    if last.is_file():
        raw = read_checkpoint(last)
        state = raw.get("train_state") or {}
        stored = raw.get("metadata") or {}
        if (stored.get("config_hash"), stored.get("inputs")) == (digest, inputs) and state.get("epoch", 0) > 0:
            model.load_state_dict(raw["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, best, run_id = state["history"], state["best_val_psnr"], state.get("mlflow_run_id")
            start_epoch = state["epoch"] + 1
            print(
                f"resuming {config['variant']} from {last} (epoch {state['epoch']} of {t['epochs']})", file=sys.stderr
            )
        else:
            print(f"{last} was written under another configuration or from other training code or data: "
                  "starting over", file=sys.stderr)  # fmt: skip
            for old in out_dir.glob("epoch-*.pth"):
                old.unlink()

    tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"],
                      run_id=run_id)  # fmt: skip
    marker = out_dir / "mlflow-run.txt"  # the run in progress: a kill before the first epoch leaves it RUNNING
    if marker.is_file():
        tracker.close_stale(marker.read_text().strip(), status="KILLED")
    if tracker.run_id:
        marker.write_text(tracker.run_id + "\n")
    if run_id is None:
        tracker.log_params({"model": config["model"], "train": t, "config_hash": digest})

    steps = math.ceil(len(train_set) / t["batch_size"])
    for epoch in range(start_epoch, t["epochs"] + 1):
        began = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(batches(train_set, batch_size=t["batch_size"], epoch=epoch, seed=t["seed"], shuffle=True),
                   total=steps, desc=f"{config['variant']} epoch {epoch}/{t['epochs']}", unit="batch", leave=False)  # fmt: skip
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            pred = model(batch["inp"], batch["coord"], batch["cell"])
            loss = torch.nn.functional.l1_loss(pred, batch["gt"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch["inp"])
            count += len(batch["inp"])
            rate = count / (time.perf_counter() - began)
            bar.set_postfix(loss=f"{total / count:.4f}", samples_s=f"{rate:.1f}")
        lr_now = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val_psnr = validate(model, val_set, batch_size=t["batch_size"], device=device)
        record = {"epoch": epoch, "loss": total / max(count, 1), "val_psnr": val_psnr, "lr": lr_now,
                  "seconds": time.perf_counter() - began}  # fmt: skip
        history.append(record)
        is_best = val_psnr > best
        best = max(best, val_psnr)
        state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "history": history, "best_val_psnr": best, "mlflow_run_id": tracker.run_id}  # fmt: skip
        if is_best:
            save_checkpoint(out_dir / "epoch-best.pth", model=model, train_state=state, metadata=metadata)
        if save_every and epoch % save_every == 0:
            save_checkpoint(out_dir / f"epoch-{epoch}.pth", model=model, train_state=state, metadata=metadata)
        save_checkpoint(last, model=model, train_state=state, metadata=metadata)  # last: the resume point
        _write_history(history, out_dir)
        tracker.log_metrics({"train_loss": record["loss"], "val_psnr": val_psnr, "lr": lr_now}, step=epoch)
        print(f"{config['variant']} epoch {epoch}: loss {record['loss']:.4f}, val PSNR {val_psnr:.2f} dB, "
              f"{record['seconds']:.1f} s", file=sys.stderr)  # fmt: skip
    tracker.log_artifact(last, artifact_path="checkpoint")
    tracker.end()
    return _finish(out_dir, config, history, best, tracker.run_id)


def _finish(out_dir: Path, config: dict, history: list, best: float, run_id: str | None) -> dict:
    _write_history(history, out_dir)
    summary = {
        "variant": config["variant"],
        "epochs": len(history),
        "final_loss": history[-1]["loss"] if history else None,
        "best_val_psnr": best if history else None,
        "train_seconds": sum(h["seconds"] for h in history),
        "mlflow_run_id": run_id,
        "config_hash": config_hash(config),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
