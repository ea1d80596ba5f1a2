"""Learning curves to the plateau: validation PSNR against training steps and wall time, per recipe.

For each recipe (a patch of the ``train`` section, run at a length of several default budgets) this trains
LIIF, MetaSR, the x2 up-sampler and the RQ3 pair (LIIF on native-size ground truths against the up-sampler on
resized ones) exactly as ``train@`` does, with the divergence guard on and a snapshot every ``--every``
fraction of the run. Each snapshot is scored on the **validation** split only (the test photographs are never
read): the sample photographs at x2, x4 and x12 minus Bicubic (DIV2K protocol), the squares at the RQ3 task
(RGB PSNR at H x H). Trainings run ``--jobs`` at a time with the cores shared between them, as
``liif repro --jobs auto`` runs the study.

    dvc repro prepare                                              # the prepared data it reads
    python benchmarks/learning_curves.py                           # every recipe: table, figure, csv
    python benchmarks/learning_curves.py --only lr-1e-3-4x --variants liif metasr
    python benchmarks/learning_curves.py --plot-only
"""

import argparse
import copy
import json
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure

from liif.config.params import load_params
from liif.config.variants import resolve_variant
from liif.data.layout import PreparedData
from liif.eval.scores import evaluate_pairs, evaluate_task
from liif.images import list_images
from liif.models import build_model
from liif.train.loop import DivergedError, fit
from liif.train.patches import make_training_sets

# name -> (patch of the default train section, multiple of each variant's default epochs); the milestones
# stretch with the length, as a user lengthening the schedule would. Each names its peak lr, so a row of
# curves.csv keeps its meaning when params.yaml's default changes.
RECIPES = {
    "lr-1e-3": ({"lr": 1.0e-3}, 1),  # the default recipe chosen from these curves
    "lr-1e-3-1.33x": ({"lr": 1.0e-3}, 4 / 3),  # ... at 400 epochs: what the +0.5 dB target takes
    "lr-1e-3-2x": ({"lr": 1.0e-3}, 2),  # ... at 600 epochs
    "lr-1e-3-4x": ({"lr": 1.0e-3}, 4),  # ... stretched 4x: its margin
    "lr-1e-3-8x": ({"lr": 1.0e-3}, 8),
    "lr-1e-3-5.33x": ({"lr": 1.0e-3}, 16 / 3),  # the 400-epoch recipe stretched 4x: its margin
    "lr-2e-3": ({"lr": 2.0e-3}, 1),  # the first 300-epoch default
    "lr-2e-3-4x": ({"lr": 2.0e-3}, 4),  # ... which diverges stretched 4x
    "lr-4e-3-4x": ({"lr": 4.0e-3}, 4),  # the 900-step default's peak lr
}
VARIANTS = ["liif", "metasr", "upsample-x2", "sized-liif-32-64", "sized-upsample-32-64"]
SCALES = (2, 4, 12)


def recipe_config(params: dict, variant: str, patch: dict, length: float) -> dict:
    """The variant's resolved configuration with the recipe patch applied and its schedule stretched."""
    config = copy.deepcopy(resolve_variant(params, variant))
    t = config["train"]
    t.update(patch)
    t["milestones"] = [max(round(m * length), 1) for m in t["milestones"]]
    t["epochs"] = max(round(t["epochs"] * length), t["milestones"][-1] + 1)
    return config


def photo_psnr(model, prepared: PreparedData, dataset: str, split: str) -> dict:
    """Mean RGB PSNR per scale on a split's photographs (DIV2K protocol; shipped MATLAB LR at x2-x4)."""
    hr, out = list_images(prepared.hr(dataset, split)), {}
    for s in SCALES:
        lr_dir = prepared.lr(dataset, split, s) if s <= 4 else None
        scores = evaluate_pairs(model, hr, scale=s, protocol="div2k", lr_dir=lr_dir, progress=False)
        out[s] = sum(x.psnr for x in scores) / len(scores)
    return out


def score(model, config: dict, prepared: PreparedData, bicubic: dict | None) -> dict:
    """Validation PSNR: minus Bicubic per scale on the sample photos, or the RQ3 task's PSNR on the squares."""
    t = config["train"]
    if t.get("task"):
        low, high = t["task"]
        val = t["val_split"]
        scores = evaluate_task(model, prepared.sized(t["dataset"], val, low), prepared.sized(t["dataset"], val, high))
        return {"task": sum(s.psnr for s in scores) / len(scores)}
    psnr = photo_psnr(model, prepared, t["dataset"], t["val_split"])
    return {f"x{s}_minus_bicubic": psnr[s] - bicubic[s] for s in SCALES}


def run(
    recipe: str, variant: str, *, data: str, work: str, every: float, threads: int, length: float | None
) -> list[dict]:
    """(in a worker process) Train one variant under one recipe; one row per scored snapshot."""
    torch.set_num_threads(threads)
    patch, length = RECIPES[recipe][0], length or RECIPES[recipe][1]
    config = recipe_config(load_params(), variant, patch, length)
    prepared = PreparedData(data)
    train_set, val_set = make_training_sets(config, prepared)
    epochs, steps_per_epoch = config["train"]["epochs"], -(-len(train_set) // config["train"]["batch_size"])
    out = Path(work) / f"{recipe}-{variant}"
    diverged = None
    try:
        fit(config, train_set, val_set, out, device="cpu", save_every=max(round(epochs * every), 1))
    except DivergedError as e:
        diverged = str(e)
    history = pd.read_csv(out / "history.tsv", sep="\t").set_index("epoch") if (out / "history.tsv").is_file() else None
    if history is None:  # a diverged run keeps its history in the checkpoint's train state
        last = torch.load(out / "epoch-last.pth", weights_only=True) if (out / "epoch-last.pth").is_file() else {}
        history = pd.DataFrame((last.get("train_state") or {}).get("history") or [{"epoch": 0, "seconds": 0.0}])
        history = history.set_index("epoch")
    task = config["train"].get("task")
    bicubic_model = build_model({"name": "bicubic", "args": {}})
    bicubic = (
        None if task else photo_psnr(bicubic_model, prepared, config["train"]["dataset"], config["train"]["val_split"])
    )
    snapshots = {int(p.stem.split("-")[1]): p for p in out.glob("epoch-[0-9]*.pth")}
    if (out / "epoch-last.pth").is_file():  # the end of the run (or the last good epoch) even off the interval
        last = torch.load(out / "epoch-last.pth", weights_only=True)
        snapshots.setdefault(last["train_state"]["epoch"], out / "epoch-last.pth")
    rows = []
    for epoch, snapshot in sorted(snapshots.items()):
        model = build_model(config["model"])
        model.load_state_dict(torch.load(snapshot, weights_only=True)["state_dict"])
        row = {
            "recipe": recipe,
            "variant": variant,
            "epoch": epoch,
            "steps": epoch * steps_per_epoch,
            "train_seconds": round(float(history.loc[:epoch, "seconds"].sum()), 1),
            "loss": round(float(history.loc[epoch, "loss"]), 5),
            **{k: round(v, 3) for k, v in score(model.eval(), config, prepared, bicubic).items()},
            "diverged": diverged or "",
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if diverged and not rows:
        rows.append({"recipe": recipe, "variant": variant, "epoch": 0, "steps": 0, "diverged": diverged})
    return rows


def plot(table: pd.DataFrame, path: Path):
    """One column per scale and one for the RQ3 task; PSNR against steps (top) and wall time (bottom)."""
    columns = [f"x{s}_minus_bicubic" for s in SCALES] + ["task"]
    fig = Figure(figsize=(5 * len(columns) + 3, 8.5))
    axes = fig.subplots(2, len(columns), squeeze=False)
    styles = {v: style for v, style in zip(VARIANTS, ["-", "--", ":", "-", "--"])}
    palette = "blue olive green cyan purple pink orange red brown".split()
    colours = {recipe: f"tab:{c}" for recipe, c in zip(RECIPES, palette)}
    for col, name in enumerate(columns):
        for row, x in enumerate(("steps", "train_seconds")):
            ax = axes[row][col]
            for (recipe, variant), group in table.groupby(["recipe", "variant"], sort=False):
                if name not in group or group[name].isna().all():
                    continue
                ax.plot(
                    group[x],
                    group[name],
                    styles.get(variant, "-"),
                    marker="o",
                    markersize=3,
                    color=colours.get(recipe, "black"),
                    label=f"{recipe}: {variant}",
                )
                gone = group[group["diverged"].fillna("") != ""]
                if len(gone):
                    ax.plot(gone[x].iloc[-1:], gone[name].iloc[-1:], "x", color="red", markersize=12)
            if name != "task":
                ax.axhline(0, color="black", linewidth=1)
                ax.set_ylim(bottom=max(ax.get_ylim()[0], -2))
            ax.set_title(
                ("RQ3 task 32-64: PSNR at H" if name == "task" else f"{name.split('_')[0]}: minus Bicubic") + " (val)"
            )
            ax.set_xlabel("training steps" if x == "steps" else "training time, 1 of 2 jobs on 2 cores (s)")
            ax.set_ylabel("dB")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # the photograph curves' legend, beside the panels it would cover
        fig.legend(handles, labels, fontsize=7, loc="center right")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    fig.savefig(path, dpi=100)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per recipe and variant: the last snapshot, the best one, and how far the last 25 % of the run moved."""
    rows = []
    for (recipe, variant), group in table.groupby(["recipe", "variant"], sort=False):
        group = group.sort_values("epoch")
        metric = "task" if "task" in group and group["task"].notna().any() else "x4_minus_bicubic"
        late = group[group["epoch"] >= 0.75 * group["epoch"].max()][metric]
        rows.append(
            {
                "recipe": recipe,
                "variant": variant,
                "epochs": int(group["epoch"].max()),
                "steps": int(group["steps"].max()),
                "train s": group["train_seconds"].max(),
                **{
                    c: group[c].iloc[-1]
                    for c in [f"x{s}_minus_bicubic" for s in SCALES] + ["task"]
                    if c in group and group[c].notna().any()
                },
                "plateau metric": metric,
                "its range over the last quarter": late.max() - late.min() if len(late) else float("nan"),
                "diverged": (group["diverged"].fillna("").iloc[-1] or "no")[:80],
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/learning-curves", help="folder for curves.csv/.md/.png")
    parser.add_argument("--work", default="/tmp/liif-curves", help="scratch folder for checkpoints")
    parser.add_argument("--data", default="data/prepared", help="the prepared data (dvc repro prepare)")
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), help="these recipes only")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--every", type=float, default=1 / 16, help="snapshot interval, a fraction of the run")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time")
    parser.add_argument("--length", type=float, help="override each recipe's multiple of the default budget")
    parser.add_argument("--plot-only", action="store_true", help="only redraw from curves.csv")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "curves.csv"
    table = pd.read_csv(csv) if csv.is_file() else pd.DataFrame()
    todo = [] if args.plot_only else [(r, v) for r in args.only or RECIPES for v in args.variants]
    threads = max((os.cpu_count() or 1) // args.jobs, 1)
    began = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no torch thread pool inherited by fork
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
        kwargs = dict(data=args.data, work=args.work, every=args.every, threads=threads, length=args.length)
        futures = {pool.submit(run, r, v, **kwargs): (r, v) for r, v in todo}
        for done in as_completed(futures):
            recipe, variant = futures[done]
            try:
                rows = done.result()
            except Exception:
                traceback.print_exc()
                continue
            if len(table):
                table = table[~((table["recipe"] == recipe) & (table["variant"] == variant))]
            table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
            table.to_csv(csv, index=False)
            print(f"{recipe}/{variant} done after {time.perf_counter() - began:.0f} s", flush=True)
    if table.empty:
        return 1
    summary = summarise(table)
    (out / "curves.md").write_text(summary.round(2).to_markdown(index=False) + "\n")
    plot(table, out / "curves.png")
    print(summary.round(2).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
