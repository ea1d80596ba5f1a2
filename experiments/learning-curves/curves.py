"""Learning curves to the plateau: validation PSNR against training steps and wall time, per recipe.

A recipe of the study's ``params.yaml`` (in the section its ``setting`` names) is a patch of the repository's
``train`` section run at a multiple (``length``) of each variant's default epochs, the milestones stretched with
it as a user lengthening the schedule would. Each of its variants (LIIF, MetaSR, the x2 up-sampler, the RQ3 pair)
trains exactly as ``train@`` does, with the divergence guard on and a snapshot every ``every`` of the run. Each
snapshot is scored on the **validation** split only (the test photographs are never read): the sample
photographs at x2, x4 and x12 minus Bicubic (DIV2K protocol), the squares at the RQ3 task (RGB PSNR at H x H).
Trainings run ``runtime.jobs`` at a time with the cores shared between them, as ``liif repro --jobs auto``
runs the study.

    dvc repro experiments/learning-curves/dvc.yaml      # from the repository root; see README.md here
    python curves.py --plot-only                        # in this folder: redraw curves.md and .png from curves.csv
"""

import argparse
import copy
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure

from liif.config.params import ParamsError, load_params, read_yaml
from liif.config.variants import resolve_variant
from liif.data.layout import PreparedData
from liif.errors import run_stage
from liif.eval.scores import evaluate_pairs, evaluate_task
from liif.images import list_images
from liif.models import build_model
from liif.train.divergence import DivergedError
from liif.train.loop import fit
from liif.train.patches import make_training_sets

SCALES = (2, 4, 12)
SETTING_KEYS = {"every", "recipes"}
RECIPE_KEYS = {"train", "length", "variants"}


def read_setting(path: Path) -> tuple[str, dict]:
    """The section of the study's params file that its ``setting`` names, checked: a mistake is one line."""
    study = read_yaml(path)
    name = study.get("setting") if isinstance(study, dict) else None
    if not isinstance(name, str) or name == "runtime" or not isinstance(study.get(name), dict):
        raise ParamsError(f"{path} setting: {name!r} names no section of the file; use quick or full")
    setting, where = study[name], f"{path} {name}"
    if set(setting) != SETTING_KEYS:
        raise ParamsError(f"{where}: expected the keys {', '.join(sorted(SETTING_KEYS))}, found {sorted(setting)}")
    every = setting["every"]
    if isinstance(every, bool) or not isinstance(every, int | float) or not 0 < every <= 1:
        raise ParamsError(f"{where}.every: {every!r}; a fraction of each run in (0, 1], e.g. 0.0625 for 16 snapshots")
    if not isinstance(setting["recipes"], dict) or not setting["recipes"]:
        raise ParamsError(f"{where}.recipes: expected a mapping of recipe names to recipes")
    for recipe, spec in setting["recipes"].items():
        at = f"{where}.recipes.{recipe}"
        if not isinstance(spec, dict) or not set(spec) <= RECIPE_KEYS or not {"length", "variants"} <= set(spec):
            raise ParamsError(f"{at}: expected length, variants and optionally train (a patch of params.yaml train)")
        length, variants = spec["length"], spec["variants"]
        if isinstance(length, bool) or not isinstance(length, int | float) or length <= 0:
            raise ParamsError(f"{at}.length: {length!r}; a positive multiple of each variant's epochs")
        if not isinstance(spec.get("train", {}), dict):
            raise ParamsError(f"{at}.train: expected a mapping of params.yaml train keys")
        if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
            raise ParamsError(f"{at}.variants: expected a list of variants of params.yaml")
    return name, setting


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


def run(recipe: str, config: dict, *, data: str, work: str, every: float, threads: int) -> list[dict]:
    """(in a worker process) Train one variant under one recipe; one row per scored snapshot."""
    torch.set_num_threads(threads)
    variant = config["variant"]
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


def plot(table: pd.DataFrame, path: Path, *, time_label: str):
    """One column per scale and one for the RQ3 task; PSNR against steps (top) and wall time (bottom)."""
    columns = [f"x{s}_minus_bicubic" for s in SCALES] + ["task"]
    fig = Figure(figsize=(5 * len(columns) + 3, 8.5))
    axes = fig.subplots(2, len(columns), squeeze=False)
    styles = {v: style for v, style in zip(table["variant"].unique(), ["-", "--", ":", "-", "--", ":"] * 4)}
    palette = "blue olive green cyan purple pink orange red brown gray".split()
    colours = {recipe: f"tab:{palette[i % len(palette)]}" for i, recipe in enumerate(table["recipe"].unique())}
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
                ("RQ3 task: PSNR at H" if name == "task" else f"{name.split('_')[0]}: minus Bicubic") + " (val)"
            )
            ax.set_xlabel("training steps" if x == "steps" else time_label)
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


def ordered(table: pd.DataFrame, setting: dict) -> pd.DataFrame:
    """Rows in the setting's order (recipe, then its variants, then epoch) whatever order the jobs finished in."""
    runs = [(r, v) for r, spec in setting["recipes"].items() for v in spec["variants"]]
    key = table.apply(lambda row: runs.index((row["recipe"], row["variant"])), axis=1)
    return table.assign(_run=key).sort_values(["_run", "epoch"], kind="stable").drop(columns="_run")


def write_outputs(table: pd.DataFrame, *, csv: Path, md: Path, png: Path, time_label: str):
    table.to_csv(csv, index=False)
    summary = summarise(table)
    md.write_text(summary.round(2).to_markdown(index=False) + "\n")
    plot(table, png, time_label=time_label)
    print(summary.round(2).to_string(index=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="params.yaml", help="the study's params: setting, quick, full, runtime")
    parser.add_argument("--params", default="../../params.yaml", help="the repository's params.yaml")
    parser.add_argument("--data", default="../../data/prepared", help="the prepared data (the root's prepare@)")
    parser.add_argument("--csv", default="curves.csv", help="one row per scored snapshot")
    parser.add_argument("--table", default="curves.md", help="the last snapshot per recipe and variant")
    parser.add_argument("--figure", default="curves.png")
    parser.add_argument("--work", help="keep the checkpoints in this folder (default: a temporary one)")
    parser.add_argument("--plot-only", action="store_true", help="only redraw the table and figure from --csv")
    args = parser.parse_args()
    study = read_yaml(args.study)
    jobs = int(((study or {}).get("runtime") or {}).get("jobs") or 2)
    cores = os.cpu_count() or 1
    time_label = f"training time, 1 of {jobs} jobs on {cores} cores (s)"
    outputs = dict(csv=Path(args.csv), md=Path(args.table), png=Path(args.figure), time_label=time_label)
    if args.plot_only:
        write_outputs(pd.read_csv(args.csv), **outputs)
        return 0
    name, setting = read_setting(Path(args.study))
    params = load_params(args.params)
    todo = [  # resolved here, so a variant or a key params.yaml lacks is one line before any training
        (recipe, recipe_config(params, variant, spec.get("train", {}), spec["length"]))
        for recipe, spec in setting["recipes"].items()
        for variant in spec["variants"]
    ]
    print(f"learning curves, setting {name}: {len(todo)} trainings, {jobs} at a time", flush=True)
    threads = max(cores // jobs, 1)
    began, tables, failed = time.perf_counter(), [], []
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no torch thread pool inherited by fork
    with tempfile.TemporaryDirectory(prefix="liif-curves-") as scratch:
        kwargs = dict(data=args.data, work=args.work or scratch, every=setting["every"], threads=threads)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = {pool.submit(run, recipe, config, **kwargs): (recipe, config) for recipe, config in todo}
            for done in as_completed(futures):
                recipe, config = futures[done]
                try:
                    tables.append(pd.DataFrame(done.result()))
                except Exception:
                    traceback.print_exc()
                    failed.append(f"{recipe}/{config['variant']}")
                    continue
                print(f"{recipe}/{config['variant']} done after {time.perf_counter() - began:.0f} s", flush=True)
    if failed:  # a partial table would pass for the study: nothing is written
        print(f"learning curves: {', '.join(failed)} failed (above); no output written", file=sys.stderr)
        return 1
    write_outputs(ordered(pd.concat(tables, ignore_index=True), setting), **outputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_stage("learning-curves", main))
