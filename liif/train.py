"""Training per spec section 3: L1 on normalised RGB, Adam, MultiStepLR, validation every epoch.

``train_variant`` writes into its output folder, atomically, after every epoch:
``epoch-last.pth`` (weights plus optimizer, scheduler and history),
``epoch-best.pth`` (best validation PSNR) and, every ``save_every`` epochs,
``epoch-<n>.pth``. Rerun after a kill, it resumes from ``epoch-last.pth`` and
ends with the same weights as a run that never stopped (data are a function
of seed, epoch and index; see ``liif.data``). A checkpoint written under
another configuration is never resumed: the run starts over and says so.
"""

import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from liif.checkpoint import read_checkpoint, save_checkpoint
from liif.config import config_hash
from liif.data import DownsampledPatches, PairedPatches, UniformVariedPairs
from liif.models import build_model
from liif.render import resolve_device
from liif.tracking import Tracker


def make_datasets(config: dict, data: dict) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """Training and validation sets for a variant; ``data`` holds uint8 images: train_hr, val_hr,
    and for fixed-scale models train_lr / val_lr (paired LR at the model's scale)."""
    t = config["train"]
    seed = t["seed"]
    val_hr = data["val_hr"][: t["val_images"]]
    if t.get("task"):  # the size-varied ground-truth study (spec 3.4)
        lr_size, hr_size = t["task"]
        fixed = config["model"]["name"] == "fixed-scale"
        common = dict(lr_size=lr_size, hr_size=hr_size, sample_q=t["sample_q"])
        train = UniformVariedPairs(data["train_lr"], data["train_hr"], augment=t["augment"], repeat=t["repeat"],
                                   gt_resize=hr_size if fixed else None, seed=seed, **common)  # fmt: skip
        val = UniformVariedPairs(data["val_lr"][: t["val_images"]], val_hr, augment=False, varied=False,
                                 repeat=t["val_repeat"], seed=seed + 1, **common)  # fmt: skip
        return train, val
    if config["model"]["name"] == "fixed-scale":
        scale = config["model"]["args"]["scale"]
        train = PairedPatches(data["train_hr"], data["train_lr"], scale=scale, inp_size=t["inp_size"],
                              augment=t["augment"], repeat=t["repeat"], seed=seed)  # fmt: skip
        val = PairedPatches(val_hr, data["val_lr"][: t["val_images"]], scale=scale, inp_size=t["inp_size"],
                            augment=False, repeat=t["val_repeat"], seed=seed + 1)  # fmt: skip
        return train, val
    common = dict(inp_size=t["inp_size"], scale_min=t["scale_min"], scale_max=t["scale_max"], sample_q=t["sample_q"])
    train = DownsampledPatches(data["train_hr"], augment=t["augment"], repeat=t["repeat"], seed=seed, **common)
    val = DownsampledPatches(val_hr, augment=False, repeat=t["val_repeat"], seed=seed + 1, **common)
    return train, val


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


def train_variant(config: dict, data: dict, out_dir: str | Path, *, tracking: dict | None = None) -> dict:
    """Train (or resume) one variant; returns a summary written to ``out_dir/summary.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = config["train"]
    digest = config_hash(config)
    torch.manual_seed(t["seed"])
    model = build_model(config["model"])
    metadata = {"variant": config["variant"], "config_hash": digest}
    tracking = tracking or {"enabled": False, "experiment": "liif-repro"}

    if config["model"]["name"] == "bicubic":  # nothing to learn
        save_checkpoint(out_dir / "epoch-last.pth", model=model, train_state={"epoch": 0, "history": []},
                        metadata=metadata)  # fmt: skip
        tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"])
        tracker.log_params({"model": config["model"]})
        tracker.end()
        return _finish(out_dir, config, [], 0.0, tracker.run_id)

    device = resolve_device(t["device"])
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=t["lr"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=t["milestones"], gamma=t["gamma"])
    history, best, start_epoch, run_id = [], -math.inf, 1, None

    last = out_dir / "epoch-last.pth"
    if last.is_file():
        raw = read_checkpoint(last)
        state = raw.get("train_state") or {}
        stored = raw.get("metadata", {}).get("config_hash")
        if stored == digest and state.get("epoch", 0) > 0:
            model.load_state_dict(raw["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, best, run_id = state["history"], state["best_val_psnr"], state.get("mlflow_run_id")
            start_epoch = state["epoch"] + 1
            print(
                f"resuming {config['variant']} from {last} (epoch {state['epoch']} of {t['epochs']})", file=sys.stderr
            )
        else:
            print(f"{last} was written under another configuration: starting over", file=sys.stderr)
            for old in out_dir.glob("epoch-*.pth"):
                old.unlink()

    tracker = Tracker(enabled=tracking["enabled"], experiment=tracking["experiment"], run_name=config["variant"],
                      run_id=run_id)  # fmt: skip
    if run_id is None:
        tracker.log_params({"model": config["model"], "train": t, "config_hash": digest})

    train_set, val_set = make_datasets(config, data)
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
        if t.get("save_every") and epoch % t["save_every"] == 0:
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
