"""Training per spec section 3: L1 on normalised RGB, Adam, MultiStepLR, validation every epoch.

``train_variant`` trains one resolved variant from the prepared data; ``fit`` is the loop itself, on any pair
of training and validation sets. The loop lives here; its other concerns each have a module of this package:
the run folder (checkpoints after every epoch, resume, superseded runs, history and summary: ``folder``), the
divergence guard (``divergence``), the MLflow run of a training (``track``) and data parallelism
(``distributed``).

Rerun after a kill, a training resumes from ``epoch-last.pth`` and ends with the same weights as a run that
never stopped (data are a function of seed, epoch and index; see ``liif.train.patches``). A checkpoint written
under another configuration, or from other training code or data (``train_inputs``), is never resumed: the run
starts over and says so. So when DVC re-runs ``train@v`` because, say, ``liif/images.py`` changed, the model
is retrained.

Batches come from a DataLoader with ``runtime.workers`` processes; under
``torchrun`` (``runtime.nproc``) every process trains on its share of each
batch (``liif.train.distributed``). Mixed precision (``train.amp``) is part of a
variant's identity, since it changes the numbers; ``torch.compile`` and
channels-last (``runtime.compile``, ``runtime.channels_last``) are not.
"""

import hashlib
import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from liif.config.schema import AMP_CHOICES
from liif.config.variants import config_hash
from liif.data.layout import PreparedData
from liif.device import resolve_device, resolve_workers
from liif.files import LAST
from liif.models import build_model
from liif.models.checkpoint import save_checkpoint
from liif.train import distributed, folder, track
from liif.train.divergence import divergence, stop_diverged
from liif.train.patches import EpochBatches, make_training_sets

# The autocast dtype of each train.amp mode, named in liif.config.schema.AMP_CHOICES; fp32 runs without autocast.
AMP_DTYPES = {name: getattr(torch, dtype) if dtype else None for name, dtype in AMP_CHOICES.items()}


def grad_scaler(amp_dtype, device: torch.device):
    """The gradient scaler fp16 autocast needs (its small range underflows gradients); None otherwise."""
    return torch.amp.GradScaler(device.type) if amp_dtype is torch.float16 else None


def make_loader(
    dataset,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool,
    workers: int,
    pin_memory: bool = False,
    ranks: distributed.Ranks | None = None,
):
    """A DataLoader whose batches are a pure function of (seed, epoch): ``workers`` processes make them
    ahead of the training step (0: in this process), and the weights do not depend on how many."""
    ranks = ranks or distributed.Ranks()
    sampler = EpochBatches(
        len(dataset), batch_size=batch_size, seed=seed, shuffle=shuffle, rank=ranks.rank, world=ranks.world
    )
    extra = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory, **extra
    )


def make_loaders(train_set, val_set, *, batch_size: int, seed: int, workers: int | str, device, ranks):
    """The training loader (this rank's share of every batch) and, on rank 0 alone, the validation loader;
    ``workers`` is ``runtime.workers`` (``auto``: chosen for the device and number of ranks)."""
    workers, pin = resolve_workers(workers, device, ranks.world), device.type == "cuda"
    train_loader = make_loader(
        train_set, batch_size=batch_size, seed=seed, shuffle=True, workers=workers, pin_memory=pin, ranks=ranks
    )
    if not ranks.main:
        return train_loader, None
    val_loader = make_loader(val_set, batch_size=batch_size, seed=seed, shuffle=False, workers=workers, pin_memory=pin)
    return train_loader, val_loader


def train_step(model, batch: dict, optimizer, *, amp_dtype=None, scaler=None, weight: float | None = None):
    """One optimisation step: ``model(inp, coord, cell)`` under autocast when ``amp_dtype`` is set, L1
    against ``gt`` (times ``weight``: a rank's share of a distributed batch), backward, optimizer step
    (through ``scaler`` for fp16). Returns the unweighted loss."""
    with torch.autocast(batch["inp"].device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        pred = model(batch["inp"], batch["coord"], batch["cell"])
        loss = torch.nn.functional.l1_loss(pred.float(), batch["gt"])
    scaled = loss * weight if weight is not None else loss
    optimizer.zero_grad(set_to_none=True)
    if scaler:
        scaler.scale(scaled).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        scaled.backward()
        optimizer.step()
    return loss


def train_one_epoch(
    model, loader, optimizer, *, epoch: int, device, amp_dtype=None, scaler=None, channels_last=False, ranks, desc=""
) -> tuple[float, float]:
    """One pass over ``loader`` at ``epoch``, a ``train_step`` per batch. Returns the epoch's mean loss over every
    rank's share and the learning rate it trained at (the scheduler steps after). A single process stops at
    the first non-finite step loss, which makes the mean non-finite (``divergence``)."""
    loader.batch_sampler.set_epoch(epoch)
    global_sizes, pin = loader.batch_sampler.global_sizes(), device.type == "cuda"
    began, total, count = time.perf_counter(), 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not ranks.main)
    for step, batch in enumerate(bar):
        batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
        if channels_last:
            batch["inp"] = batch["inp"].contiguous(memory_format=torch.channels_last)
        # DDP averages gradients over ranks: weight each share by its size, so the result is the
        # gradient of the whole batch's mean loss whatever the number of processes.
        weight = len(batch["inp"]) * ranks.world / global_sizes[step] if ranks.world > 1 else None
        loss = train_step(model, batch, optimizer, amp_dtype=amp_dtype, scaler=scaler, weight=weight).item()
        total += loss * len(batch["inp"])
        count += len(batch["inp"])
        if not math.isfinite(loss) and ranks.world == 1:
            break  # diverged: nothing after can bring the mean back (ranks go on in step, and stop together)
        bar.set_postfix(
            loss=f"{total / count:.4f}", samples_s=f"{count * ranks.world / (time.perf_counter() - began):.1f}"
        )
    bar.close()
    if ranks.world > 1:  # the epoch's mean loss over every rank's share
        sums = torch.tensor([total, count], dtype=torch.float64, device=device)  # NCCL reduces GPU tensors
        torch.distributed.all_reduce(sums)
        total, count = sums.tolist()
    return total / max(count, 1), optimizer.param_groups[0]["lr"]


def psnr_normalised(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample RGB PSNR of normalised predictions, clamped to [0, 1] (validation, spec 3.1)."""
    pred = (pred * 0.5 + 0.5).clamp(0, 1)
    gt = gt * 0.5 + 0.5
    mse = (pred - gt).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


@torch.no_grad()
def validate(model, loader, *, device) -> float:
    model.eval()
    scores = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        scores.append(psnr_normalised(model(batch["inp"], batch["coord"], batch["cell"]), batch["gt"]).cpu())
    model.train()
    return torch.cat(scores).mean().item()


def build_training(config: dict, *, device, amp_dtype=None, channels_last=False):
    """(model, optimizer, scheduler, scaler) of a resolved variant: the model initialised from ``train.seed``,
    Adam, MultiStepLR and, for fp16, the gradient scaler."""
    t = config["train"]
    torch.manual_seed(t["seed"])
    model = build_model(config["model"]).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=t["lr"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=t["milestones"], gamma=t["gamma"])
    return model, optimizer, scheduler, grad_scaler(amp_dtype, device)


def wrap_model(model, *, device, ranks, compile_model=False):
    """The module the training steps call: ``model`` under DDP across ranks, compiled when asked (the weights
    stay ``model``'s)."""
    if ranks.world > 1:
        cuda = device.type == "cuda"
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if compile_model:
        model = torch.compile(model)
    return model


def train_inputs(config: dict, prepared: PreparedData) -> str:
    """A fingerprint of what the weights depend on besides the configuration: the training code (the source of
    every loaded ``liif`` module: the stage's packages in ``dvc.yaml`` that ran, and the registries its parameter
    checks read, so it errs on the side of retraining) and the training data (the manifests of the datasets the
    recipe reads)."""
    digest = hashlib.sha256()
    package = __name__.split(".")[0]
    for name in sorted(m for m in sys.modules if m == package or m.startswith(f"{package}.")):
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
        save_checkpoint(
            out_dir / LAST,
            model=build_model(config["model"]),
            train_state={"epoch": 0, "history": []},
            metadata=metadata,
        )
        run_id, model_id = track.track_untrained(config, tracking, checkpoint=out_dir / LAST)
        return folder.finish(out_dir, config, [], 0.0, run_id, model_id=model_id)
    train_set, val_set = make_training_sets(config, prepared)
    return fit(
        config,
        train_set,
        val_set,
        out_dir,
        device=runtime["device"],
        save_every=runtime["save_every"],
        workers=runtime["workers"],
        compile_model=runtime["compile"],
        channels_last=runtime["channels_last"],
        tracking=tracking,
        inputs=train_inputs(config, prepared),
        datasets=dataset_inputs(config, prepared),
    )


def dataset_inputs(config: dict, prepared: PreparedData) -> list[dict]:
    """The prepared data a training reads, as MLflow records it: name, splits, manifest and its digest (one entry
    per dataset: MLflow keeps one input per dataset and digest)."""
    t = config["train"]
    inputs = {}
    for name, split in ((t["dataset"], "train"), (t.get("val_dataset") or t["dataset"], t["val_split"])):
        if name in inputs:
            inputs[name]["split"] += f", {split}"
            continue
        manifest = prepared.manifest(name)
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
        inputs[name] = {"name": name, "split": split, "path": manifest, "digest": digest}
    return list(inputs.values())


def run_metadata(config: dict, inputs: str) -> dict:
    """What every checkpoint of a run records: its variant, configuration hash, ``inputs`` fingerprint and the
    configured epochs (what `liif info` and `liif evaluate` measure a checkpoint's epoch against)."""
    return {
        "variant": config["variant"],
        "config_hash": config_hash(config),
        "inputs": inputs,
        "epochs": config["train"]["epochs"],
    }


def keep_epoch(
    out_dir: Path, training: tuple, history: list, *, best: float, metadata: dict, tracker, save_every: int, device
):
    """(rank 0) An epoch that did not diverge: its checkpoints and history saved, the moved-aside runs dropped
    (``folder.settle``), its metrics logged. ``training`` is ``build_training``'s; returns the best PSNR so far."""
    model, optimizer, scheduler, scaler = training
    val_psnr = history[-1]["val_psnr"]
    is_best, best = val_psnr > best, max(best, val_psnr)
    state = folder.train_state(optimizer, scheduler, scaler, history=history, best=best, run_id=tracker.run_id)
    folder.save_epoch(out_dir, model, state=state, metadata=metadata, is_best=is_best, save_every=save_every)
    folder.settle(out_dir)
    track.log_epoch(tracker, history[-1], variant=metadata["variant"], device=device)
    return best


def fit(
    config: dict,
    train_set,
    val_set,
    out_dir: str | Path,
    *,
    device: str = "auto",
    save_every: int = 0,
    workers: int | str = 0,
    compile_model: bool = False,
    channels_last: bool = False,
    tracking: dict | None = None,
    inputs: str = "",
    datasets: list[dict] = (),
) -> dict:
    """Train a resolved variant: resume from ``epoch-last.pth`` of the same configuration and ``inputs`` (code and
    data, see ``train_inputs``) or start over; under torchrun each rank trains its share, rank 0 alone writes."""
    out_dir, t = Path(out_dir), config["train"]
    device = resolve_device(device)
    ranks = distributed.start(device)
    device = distributed.device_for(ranks, device)
    if ranks.main:
        folder.prepare_out_dir(out_dir)
    metadata, amp_dtype = run_metadata(config, inputs), AMP_DTYPES[t.get("amp", "fp32")]
    training = build_training(config, device=device, amp_dtype=amp_dtype, channels_last=channels_last)
    model, optimizer, scheduler, scaler = training
    history, best, start_epoch, run_id = folder.resume(
        out_dir, model, optimizer, scheduler, scaler, config=config, metadata=metadata, ranks=ranks
    )
    losses = [h["loss"] for h in history]  # every rank's: the divergence check must stop them all together
    tracker = track.start_tracking(
        config, out_dir=out_dir, tracking=tracking, run_id=run_id, ranks=ranks, datasets=datasets
    )
    train_loader, val_loader = make_loaders(
        train_set, val_set, batch_size=t["batch_size"], seed=t["seed"], workers=workers, device=device, ranks=ranks
    )
    step_model = wrap_model(model, device=device, ranks=ranks, compile_model=compile_model)
    how = {"device": device, "amp_dtype": amp_dtype, "scaler": scaler, "channels_last": channels_last, "ranks": ranks}

    for epoch in range(start_epoch, t["epochs"] + 1):
        began, desc = time.perf_counter(), f"{config['variant']} epoch {epoch}/{t['epochs']}"
        loss, lr = train_one_epoch(step_model, train_loader, optimizer, epoch=epoch, desc=desc, **how)
        scheduler.step()
        rule = divergence(loss, losses, samples=len(train_set))
        if rule:
            stop_diverged(
                config, out_dir, epoch=epoch, loss=loss, rule=rule, metadata=metadata, tracker=tracker, ranks=ranks
            )
        losses.append(loss)
        if not ranks.main:
            continue
        val_psnr = validate(model, val_loader, device=device)
        history.append(
            {"epoch": epoch, "loss": loss, "val_psnr": val_psnr, "lr": lr, "seconds": time.perf_counter() - began}
        )
        best = keep_epoch(
            out_dir,
            training,
            history,
            best=best,
            metadata=metadata,
            tracker=tracker,
            save_every=save_every,
            device=device,
        )

    distributed.stop()
    if not ranks.main:
        return {}
    if history:  # also a finished run moved back: it has saved its epochs
        folder.settle(out_dir)
    model_id = track.end_tracking(tracker, out_dir=out_dir, config=config, history=history, device=device)
    return folder.finish(out_dir, config, history, best, tracker.run_id, model_id=model_id)
