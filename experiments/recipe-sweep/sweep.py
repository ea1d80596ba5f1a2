"""The study behind the default profile: validation PSNR against training time for candidate CPU recipes.

Every candidate of the study's ``params.yaml`` (in the section its ``setting`` names) is a patch of the
repository's ``params.yaml`` (like a profile) applied over the section's ``start``, the recipe the sweep began
from, so the table keeps its meaning when params.yaml takes a winner; ``length`` stretches the resulting
schedule (epochs and milestones). The candidate's variants train exactly as ``train@`` does (tracking off) on
the root pipeline's prepared sample suite, a snapshot every ``every`` of the run, and each snapshot is scored on
the **validation** photographs (held out of training and of the test set; the test photos are never read here)
with the DIV2K protocol (RGB, shave s + 6), against Bicubic on the same images. It writes a table and a figure
of PSNR against wall time.

    dvc repro experiments/recipe-sweep/dvc.yaml      # from the repository root; see README.md here
    python sweep.py --plot-only                      # in this folder: redraw sweep.md and .png from sweep.csv
"""

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from liif.config.params import ParamsError, apply_profile, load_params, read_yaml  # noqa: E402
from liif.config.variants import resolve_variant  # noqa: E402
from liif.data.layout import PreparedData  # noqa: E402
from liif.errors import run_stage  # noqa: E402
from liif.eval.scores import evaluate_pairs  # noqa: E402
from liif.images import list_images  # noqa: E402
from liif.models import build_model  # noqa: E402
from liif.train.loop import fit  # noqa: E402
from liif.train.patches import make_training_sets  # noqa: E402

SCALES = (2, 4, 12)
DATASET = "sample"  # the photographs every candidate trains on and is scored on (validation split)
SETTING_KEYS = {"start", "length", "every", "candidates"}
PATCH_SECTIONS = {"model", "train"}  # a candidate changes the recipe, never the data (one prepared copy)


def read_setting(path: Path) -> tuple[str, dict]:
    """The section of the study's params file that its ``setting`` names, checked: a mistake is one line."""
    study = read_yaml(path)
    name = study.get("setting") if isinstance(study, dict) else None
    if not isinstance(name, str) or name == "runtime" or not isinstance(study.get(name), dict):
        raise ParamsError(f"{path} setting: {name!r} names no section of the file; use quick or full")
    setting, where = study[name], f"{path} {name}"
    if set(setting) != SETTING_KEYS:
        raise ParamsError(f"{where}: expected the keys {', '.join(sorted(SETTING_KEYS))}, found {sorted(setting)}")
    for key in ("length", "every"):
        value = setting[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value <= 0
            or (key == "every" and value > 1)
        ):
            raise ParamsError(f"{where}.{key}: {value!r}; a positive number (every: a fraction of the run, at most 1)")
    patches = {"start": setting["start"]}
    if not isinstance(setting["candidates"], dict) or not setting["candidates"]:
        raise ParamsError(f"{where}.candidates: expected a mapping of candidate names to {{patch, variants}}")
    for candidate, spec in setting["candidates"].items():
        at = f"{where}.candidates.{candidate}"
        if not isinstance(spec, dict) or set(spec) != {"patch", "variants"}:
            raise ParamsError(f"{at}: expected patch (of params.yaml model/train) and variants")
        variants = spec["variants"]
        if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
            raise ParamsError(f"{at}.variants: expected a list of variants of params.yaml")
        patches[f"candidates.{candidate}.patch"] = spec["patch"]
    for key, patch in patches.items():
        if not isinstance(patch, dict) or not set(patch) <= PATCH_SECTIONS:
            raise ParamsError(f"{where}.{key}: expected a patch of params.yaml's model and/or train sections")
        if not all(isinstance(section, dict) for section in patch.values()):
            raise ParamsError(f"{where}.{key}: each section of the patch is a mapping of keys")
    return name, setting


def candidate_config(base: dict, setting: dict, candidate: str, variant: str) -> dict:
    """One variant's resolved configuration under a candidate: start, then the candidate's patch, stretched."""
    params = apply_profile(
        apply_profile(copy.deepcopy(base), setting["start"]), setting["candidates"][candidate]["patch"]
    )
    config = resolve_variant(params, variant)
    t, length = config["train"], setting["length"]
    t["milestones"] = [max(round(m * length), 1) for m in t["milestones"]]
    t["epochs"] = max(round(t["epochs"] * length), t["milestones"][-1] + 1)
    return config


def score(model, prepared: PreparedData) -> dict:
    """Mean RGB PSNR on the validation photographs per scale (shipped MATLAB LR at x2-x4, as evaluate@)."""
    hr = list_images(prepared.hr(DATASET, "val"))
    out = {}
    for s in SCALES:
        lr_dir = prepared.lr(DATASET, "val", s) if s <= 4 else None
        scores = evaluate_pairs(model, hr, scale=s, protocol="div2k", lr_dir=lr_dir, progress=False)
        out[f"x{s}"] = sum(x.psnr for x in scores) / len(scores)
    return out


def run_candidate(name: str, configs: list[dict], *, prepared: PreparedData, every: float, work: Path) -> list[dict]:
    """Train each of a candidate's variants and score every snapshot; one row per snapshot."""
    bicubic = score(build_model({"name": "bicubic", "args": {}}), prepared)
    rows = []
    for config in configs:
        variant = config["variant"]
        train_set, val_set = make_training_sets(config, prepared)
        epochs = config["train"]["epochs"]
        out = work / f"{name}-{variant}"
        began = time.perf_counter()
        fit(config, train_set, val_set, out, device="cpu", save_every=max(int(epochs * every), 1))
        wall = time.perf_counter() - began
        history = pd.read_csv(out / "history.tsv", sep="\t").set_index("epoch")
        for snapshot in sorted(out.glob("epoch-[0-9]*.pth"), key=lambda p: int(p.stem.split("-")[1])):
            epoch = int(snapshot.stem.split("-")[1])
            model = build_model(config["model"])
            model.load_state_dict(torch.load(snapshot, weights_only=True)["state_dict"])
            psnr = score(model.eval(), prepared)
            row = {
                "candidate": name,
                "variant": variant,
                "epoch": epoch,
                "train_seconds": float(history.loc[:epoch, "seconds"].sum()),
                "val_patch_psnr": float(history.loc[epoch, "val_psnr"]),
            }
            for s in SCALES:
                row[f"x{s}"] = round(psnr[f"x{s}"], 3)
                row[f"x{s}_minus_bicubic"] = round(psnr[f"x{s}"] - bicubic[f"x{s}"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"{name}/{variant}: {wall:.0f} s wall for {epochs} epochs", flush=True)
    return rows


def plot(table: pd.DataFrame, path: Path):
    fig, axes = plt.subplots(1, len(SCALES), figsize=(5.2 * len(SCALES), 4.6), sharex=True)
    runs = list(table.groupby(["candidate", "variant"], sort=False))
    tab20 = plt.get_cmap("tab20").colors
    palette = tab20[0::2] + tab20[1::2]  # 20 distinct colours: the default cycle repeats after 10
    for ax, s in zip(axes, SCALES):
        for i, ((name, variant), group) in enumerate(runs):
            label = name if variant == "liif" else f"{name}: {variant}"
            ax.plot(
                group["train_seconds"],
                group[f"x{s}_minus_bicubic"],
                marker="os^D"[i % 4],
                label=label,
                color=palette[i % len(palette)],
                linestyle="-" if variant == "liif" else "--",
            )
        ax.set_ylim(bottom=max(ax.get_ylim()[0], -3))  # early snapshots far below zero would flatten the end
        ax.axhline(0, color="black", linewidth=1, linestyle="--")
        ax.set_title(f"x{s}: validation photographs")
        ax.set_xlabel("training time on 2 CPU cores (s)")
        ax.set_ylabel("PSNR minus Bicubic (dB, RGB)")
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(table: pd.DataFrame, *, csv: Path, md: Path, png: Path):
    """The csv of every snapshot; the table of each run's last one, in the order the runs were listed."""
    table.to_csv(csv, index=False)
    final = table.sort_values("epoch", kind="stable").groupby(["candidate", "variant"], sort=False).tail(1)
    order = list(dict.fromkeys(table["candidate"]))
    final = final.sort_values("candidate", key=lambda c: c.map(order.index), kind="stable")
    columns = ["candidate", "variant", "train_seconds"] + [f"x{s}_minus_bicubic" for s in SCALES]
    md.write_text(final[columns].round(2).to_markdown(index=False) + "\n")
    plot(table, png)
    print(final[columns].round(2).to_string(index=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="params.yaml", help="the study's params: setting, quick, full, runtime")
    parser.add_argument("--params", default="../../params.yaml", help="the repository's params.yaml")
    parser.add_argument("--data", default="../../data/prepared", help="the prepared data (the root's prepare@)")
    parser.add_argument("--csv", default="sweep.csv", help="one row per scored snapshot")
    parser.add_argument("--table", default="sweep.md", help="the last snapshot per candidate and variant")
    parser.add_argument("--figure", default="sweep.png")
    parser.add_argument("--work", help="keep the checkpoints in this folder (default: a temporary one)")
    parser.add_argument("--plot-only", action="store_true", help="only redraw the table and figure from --csv")
    args = parser.parse_args()
    outputs = dict(csv=Path(args.csv), md=Path(args.table), png=Path(args.figure))
    if args.plot_only:
        write_outputs(pd.read_csv(args.csv), **outputs)
        return 0
    threads = int(((read_yaml(args.study) or {}).get("runtime") or {}).get("threads") or 0)
    if threads:
        torch.set_num_threads(threads)
    name, setting = read_setting(Path(args.study))
    base = load_params(args.params)
    runs = {  # resolved here, so a variant or a key params.yaml lacks is one line before any training
        candidate: [candidate_config(base, setting, candidate, v) for v in spec["variants"]]
        for candidate, spec in setting["candidates"].items()
    }
    print(f"recipe sweep, setting {name}: {sum(map(len, runs.values()))} trainings", flush=True)
    prepared, rows = PreparedData(args.data), []
    with tempfile.TemporaryDirectory(prefix="liif-sweep-") as scratch:
        work = Path(args.work or scratch)
        for candidate, configs in runs.items():
            rows += run_candidate(candidate, configs, prepared=prepared, every=setting["every"], work=work)
    write_outputs(pd.DataFrame(rows), **outputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_stage("recipe-sweep", main))
