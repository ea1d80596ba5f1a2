"""The study behind the default profile: validation PSNR against training time for candidate CPU recipes.

Each candidate is a patch of ``params.yaml`` (like a profile). For every candidate the script prepares
the sample suite it names (cached per data spec), trains the named variants exactly as ``train@`` does
(tracking off), keeps a snapshot every quarter of the run, and scores each snapshot on the **validation**
photographs (``data.datasets.sample.val``: held out of training and of the test set; the test photos are
never read here) with the DIV2K protocol (RGB, shave s + 6), against Bicubic on the same images. It
writes a table and a figure of PSNR against wall time.

    python benchmarks/default_sweep.py --out benchmarks/default-sweep            # every candidate
    python benchmarks/default_sweep.py --only base lr-4e-3 --work /tmp/sweep
    python benchmarks/default_sweep.py --plot-only                                 # redraw from sweep.csv
"""

import argparse
import copy
import hashlib
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from liif.config.params import apply_profile, load_params  # noqa: E402
from liif.config.variants import resolve_variant  # noqa: E402
from liif.data.layout import PreparedData  # noqa: E402
from liif.data.prepare import prepare_dataset
from liif.eval.scores import evaluate_pairs  # noqa: E402
from liif.images import list_images  # noqa: E402
from liif.models import build_model  # noqa: E402
from liif.protocol import SHIPPED_LR_SCALES  # noqa: E402
from liif.sources import fetch_dataset  # noqa: E402
from liif.train.loop import fit  # noqa: E402
from liif.train.patches import make_training_sets  # noqa: E402

# Every candidate starts from the data, model and epochs of params.yaml with the paper-like recipe of the earlier
# default below, so the table does not change meaning when params.yaml takes a winner.
START = {"train": {"channel_shuffle": False, "lr": 2.0e-3, "milestones": [70, 90], "gamma": 0.5}}
S4 = {"channel_shuffle": True, "lr": 4.0e-3}
DECAY = {"milestones": [60, 85], "gamma": 0.2}
CANDIDATES = {  # name -> (params patch, variants to train); first the paper-like recipe, then one change at a time
    "base": ({}, ["liif"]),
    "lr-1e-3": ({"train": {"lr": 1.0e-3}}, ["liif"]),
    "lr-4e-3": ({"train": {"lr": 4.0e-3}}, ["liif"]),
    "shuffle": ({"train": {"channel_shuffle": True}}, ["liif"]),
    "shuffle-lr-4e-3": ({"train": S4}, ["liif"]),
    "shuffle-lr-4e-3-q128": ({"train": {**S4, "sample_q": 128}}, ["liif"]),
    "shuffle-lr-4e-3-batch16-q128": ({"train": {**S4, "batch_size": 16, "sample_q": 128}}, ["liif"]),
    "shuffle-lr-4e-3-decay-0.2": ({"train": {**S4, **DECAY}}, ["liif"]),
    "shuffle-lr-4e-3-encoder-4x48": ({"train": S4, "model": {"encoder": {"n_resblocks": 4, "n_feats": 48}}}, ["liif"]),
    "shuffle-lr-4e-3-decoder-4x48": ({"train": S4, "model": {"decoder_hidden": [48, 48, 48, 48]}}, ["liif"]),
    "shuffle-lr-4e-3-others": ({"train": S4}, ["metasr", "upsample-x2"]),
    "shuffle-lr-4e-3-decay-0.1": ({"train": {**S4, "milestones": [60, 85], "gamma": 0.1}}, ["liif"]),
    "shuffle-lr-4e-3-decay-3-steps": ({"train": {**S4, "milestones": [50, 70, 90], "gamma": 0.3}}, ["liif"]),
}
SCALES = (2, 4, 12)


def data_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params["data"], sort_keys=True).encode()).hexdigest()[:12]


def prepare(params: dict, work: Path) -> PreparedData:
    """The sample dataset of ``params`` under ``work/data-<hash>`` (made once per data spec)."""
    root = work / f"data-{data_key(params)}"
    prepared = PreparedData(root / "prepared")
    spec = params["data"]["datasets"]["sample"]
    if not prepared.manifest("sample").is_file():
        fetch_dataset("sample", spec, root / "raw")
        prepare_dataset(
            "sample",
            spec,
            raw_root=root / "raw",
            prepared=prepared,
            lr_scales=params["data"].get("lr_scales", SHIPPED_LR_SCALES),
        )
    return prepared


def score(model, prepared: PreparedData) -> dict:
    """Mean RGB PSNR on the validation photographs per scale (shipped MATLAB LR at x2-x4, as evaluate@)."""
    hr = list_images(prepared.hr("sample", "val"))
    out = {}
    for s in SCALES:
        lr_dir = prepared.lr("sample", "val", s) if s <= 4 else None
        scores = evaluate_pairs(model, hr, scale=s, protocol="div2k", lr_dir=lr_dir, progress=False)
        out[f"x{s}"] = sum(x.psnr for x in scores) / len(scores)
    return out


def run_candidate(name: str, patch: dict, variants: list[str], base: dict, work: Path) -> list[dict]:
    params = apply_profile(apply_profile(copy.deepcopy(base), START), patch)
    prepared = prepare(params, work)
    bicubic = score(build_model({"name": "bicubic", "args": {}}), prepared)
    rows = []
    for variant in variants:
        config = resolve_variant(params, variant)
        train_set, val_set = make_training_sets(config, prepared)
        epochs = config["train"]["epochs"]
        out = work / "runs" / f"{name}-{variant}"
        began = time.perf_counter()
        fit(config, train_set, val_set, out, device="cpu", save_every=max(epochs // 4, 1))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/default-sweep", help="folder for sweep.md, sweep.csv, sweep.png")
    parser.add_argument("--work", default="/tmp/liif-sweep", help="scratch folder for data and checkpoints")
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="run only these candidates")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--plot-only", action="store_true", help="only redraw the table and figure from sweep.csv")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base, work, out = load_params(), Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "sweep.csv"
    done = pd.read_csv(csv) if csv.is_file() else pd.DataFrame()
    for name in [] if args.plot_only else args.only or CANDIDATES:
        patch, variants = CANDIDATES[name]
        rows = run_candidate(name, patch, variants, base, work)
        if len(done):
            done = done[done["candidate"] != name]
        done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        done.to_csv(csv, index=False)
    final = done.sort_values("epoch", kind="stable").groupby(["candidate", "variant"], sort=False).tail(1)
    final = final.sort_values("candidate", key=lambda c: c.map(list(CANDIDATES).index), kind="stable")
    columns = ["candidate", "variant", "train_seconds"] + [f"x{s}_minus_bicubic" for s in SCALES]
    (out / "sweep.md").write_text(final[columns].round(2).to_markdown(index=False) + "\n")
    plot(done, out / "sweep.png")
    print(final[columns].round(2).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
