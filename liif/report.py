"""The reports under ``reports/``: one page per research question, tables from DataFrames, verdicts with noise.

Results are loaded into pandas from the DVC metrics (``metrics/eval/<variant>.json``
and the per-image ``.tsv``) and the training summaries. Every verdict is computed:
a difference counts only when it exceeds twice the seed-to-seed standard deviation
of the base model at that scale (``report.replicates``: the base model trained
again with other seeds); otherwise it reads "within noise". Absolute numbers of a
CPU profile on the sample suite are not the paper's; the direction of each effect
is what the pages compare.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from liif.paper import CELEBA, DIV2K, benchmark_set, paper_benchmark, paper_div2k  # noqa: E402

IN_DISTRIBUTION = (2, 3, 4)
ABLATIONS = {
    "liif-c": "no cell decoding",
    "liif-u": "no feature unfolding",
    "liif-e": "no local ensemble",
    "liif-d": "decoder depth halved",
}
SINGLE_SCALE = {"liif-x2": "trained at x2 only", "liif-x3": "trained at x3 only", "liif-x4": "trained at x4 only"}
UPSAMPLERS = {"upsample-x2": 2, "upsample-x3": 3, "upsample-x4": 4}
MAIN = ("liif", "bicubic", "metasr")


# ---------------------------------------------------------------- loading


def load_scores(metrics_dir: Path, variants: list[str]) -> pd.DataFrame:
    """Long table ``variant, dataset, scale, psnr`` (scale: 2, 3, ... or a task ``"32-64"``)."""
    rows = []
    for variant in variants:
        path = metrics_dir / f"{variant}.json"
        if path.is_file():
            for dataset, per in json.loads(path.read_text()).items():
                for key, value in per.items():
                    scale = int(key[1:]) if key.startswith("x") else key
                    rows.append({"variant": variant, "dataset": dataset, "scale": scale, "psnr": value})
    return pd.DataFrame(rows, columns=["variant", "dataset", "scale", "psnr"])


def load_per_image(metrics_dir: Path, variants: list[str]) -> pd.DataFrame:
    frames = []
    for variant in variants:
        path = metrics_dir / f"{variant}.tsv"
        if path.is_file():
            frame = pd.read_csv(path, sep="\t", dtype={"scale": str})
            frames.append(frame.assign(variant=variant))
    if not frames:
        return pd.DataFrame(columns=["variant", "dataset", "scale", "image", "psnr", "ssim"])
    out = pd.concat(frames, ignore_index=True)
    out["scale"] = [int(s) if s.isdigit() else s for s in out["scale"]]
    return out


def load_summaries(models_dir: Path, variants: list[str]) -> pd.DataFrame:
    rows = []
    for variant in variants:
        path = models_dir / variant / "summary.json"
        if path.is_file():
            rows.append(json.loads(path.read_text()))
    return pd.DataFrame(rows)


def load_history(models_dir: Path, variants: list[str]) -> pd.DataFrame:
    frames = []
    for variant in variants:
        path = models_dir / variant / "history.tsv"
        if path.is_file() and path.stat().st_size:
            frame = pd.read_csv(path, sep="\t")
            if len(frame):
                frames.append(frame.assign(variant=variant))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "epoch", "val_psnr"])


# ---------------------------------------------------------------- numbers and noise


@dataclass
class Study:
    """Everything the pages are made of, for one run of the pipeline."""

    scores: pd.DataFrame
    per_image: pd.DataFrame
    replicates: dict[str, list[str]] = field(default_factory=dict)  # base variant -> its extra-seed variants

    def datasets(self) -> list[str]:
        scaled = self.scores[self.scores["scale"].map(lambda s: isinstance(s, int))]
        return list(dict.fromkeys(scaled["dataset"]))

    def scales(self, dataset: str) -> list[int]:
        s = self.scores[(self.scores["dataset"] == dataset) & self.scores["scale"].map(lambda v: isinstance(v, int))]
        return sorted(set(s["scale"]))

    def table(self, dataset: str) -> pd.DataFrame:
        """PSNR, variants x scales."""
        s = self.scores[self.scores["dataset"] == dataset]
        s = s[s["scale"].map(lambda v: isinstance(v, int))]
        return s.pivot(index="variant", columns="scale", values="psnr")

    def seeds(self, variant: str) -> list[str]:
        return [variant, *self.replicates.get(variant, [])]

    def base(self, dataset: str, variant: str = "liif") -> pd.Series:
        """The mean over a variant's seeds, per scale."""
        table = self.table(dataset)
        present = [v for v in self.seeds(variant) if v in table.index]
        return table.loc[present].mean() if present else pd.Series(dtype=float)

    def noise(self, dataset: str, variant: str = "liif") -> pd.Series:
        """Seed-to-seed standard deviation per scale (NaN with fewer than two seeds)."""
        table = self.table(dataset)
        present = [v for v in self.seeds(variant) if v in table.index]
        return table.loc[present].std(ddof=1) if len(present) > 1 else pd.Series(np.nan, index=table.columns)

    def is_replicate(self, variant: str) -> bool:
        return any(variant in extra for extra in self.replicates.values())


def verdict(diff: float, noise: float) -> str:
    """ "better" / "worse" when |diff| exceeds twice the seed-to-seed deviation, else "within noise"."""
    if pd.isna(diff):
        return "–"
    if pd.isna(noise):
        return "better (no noise estimate)" if diff > 0 else "worse (no noise estimate)"
    if abs(diff) <= 2 * noise:
        return "within noise"
    return "better" if diff > 0 else "worse"


def comparison(study: Study, dataset: str, other: str, scales: list[int] | None = None) -> pd.DataFrame:
    """LIIF (mean over seeds) minus ``other`` per scale, with twice the seed noise and the verdict for LIIF."""
    base, noise = study.base(dataset), study.noise(dataset)
    table = study.table(dataset)
    if other not in table.index:
        return pd.DataFrame()
    rows = []
    for s in study.scales(dataset) if scales is None else scales:
        if s not in table.columns or pd.isna(table.loc[other, s]) or pd.isna(base.get(s)):
            continue
        diff = base[s] - table.loc[other, s]
        rows.append(
            {
                "scale": f"x{s}",
                "LIIF": base[s],
                other: table.loc[other, s],
                "LIIF minus": diff,
                "2 x seed sd": 2 * noise.get(s, np.nan),
                "LIIF is": verdict(diff, noise.get(s, np.nan)),
            }
        )
    return pd.DataFrame(rows)


def wins(study: Study, dataset: str, a: str, b: str, scales: list[int]) -> str:
    """On how many (image, scale) pairs ``a`` scores above ``b``: the per-image evidence behind a mean."""
    p = study.per_image[study.per_image["dataset"] == dataset]
    p = p[p["scale"].isin(scales)]
    left = p[p["variant"] == a].set_index(["image", "scale"])["psnr"]
    right = p[p["variant"] == b].set_index(["image", "scale"])["psnr"]
    both = left.index.intersection(right.index)
    if not len(both):
        return "–"
    return f"{int((left[both] > right[both]).sum())} of {len(both)}"


def differences(study: Study, dataset: str, variants: list[str]) -> pd.DataFrame:
    """Each variant minus LIIF (mean over seeds), variants x scales."""
    table, base = study.table(dataset), study.base(dataset)
    rows = [v for v in variants if v in table.index]
    return (table.loc[rows] - base).rename(columns=lambda s: f"x{s}") if rows else pd.DataFrame()


def with_noise(study: Study, dataset: str, diffs: pd.DataFrame) -> pd.DataFrame:
    """``diffs`` as text cells such as "-0.52 (worse)", judged against the seed noise of each scale."""
    noise = study.noise(dataset).rename(lambda s: f"x{s}")
    return diffs.apply(lambda col: [f"{d:+.2f} ({verdict(d, noise.get(col.name, np.nan))})" for d in col])


def markdown(frame: pd.DataFrame, digits: int = 2, index: bool = True) -> str:
    if frame.empty:
        return "_(no such runs in this profile)_"
    return frame.to_markdown(index=index, floatfmt=f".{digits}f")


def psnr_with_spread(study: Study, dataset: str) -> pd.DataFrame:
    """The PSNR table with LIIF as mean ± sd over its seeds (replicate rows folded into it)."""
    table = study.table(dataset)
    table = table.loc[[v for v in table.index if not study.is_replicate(v)]]
    shown = table.map(lambda v: "–" if pd.isna(v) else f"{v:.2f}").astype(object)  # row-assignable text
    for variant in study.replicates:
        if variant in shown.index:
            mean, sd = study.base(dataset, variant), study.noise(dataset, variant)
            n = len([v for v in study.seeds(variant) if v in study.table(dataset).index])
            for s in table.columns:
                shown.loc[variant, s] = f"{mean[s]:.2f} ± {sd[s]:.2f} ({n} seeds)"
    order = [v for v in MAIN if v in shown.index] + [v for v in shown.index if v not in MAIN]
    shown = shown.loc[order]
    shown.columns = [f"x{s}" + ("" if s in IN_DISTRIBUTION else " (OOD)") for s in table.columns]
    return shown


def size_varied(study: Study) -> pd.DataFrame:
    """RQ3 / T5: per dataset and task L-H, the up-sampler (GTs resized) against LIIF (GTs at native sizes)."""
    tasks = study.scores[study.scores["scale"].map(lambda s: isinstance(s, str))]
    rows = []
    for (dataset, task), group in tasks.groupby(["dataset", "scale"], sort=False):
        values = dict(zip(group["variant"], group["psnr"]))
        up = next((v for k, v in values.items() if "upsample" in k), np.nan)
        liif = next((v for k, v in values.items() if "upsample" not in k), np.nan)
        paper = CELEBA.get(task, {}) if "celeba" in dataset else {}
        rows.append(
            {
                "dataset": dataset,
                "task L-H": task,
                "up-sampling (GTs resized)": up,
                "LIIF (native GTs)": liif,
                "LIIF minus up-sampling": liif - up,
                "paper (CelebA-HQ)": f"{paper['liif'] - paper['upsample']:+.2f}" if paper else "–",
            }
        )
    return pd.DataFrame(rows)


def headline(study: Study) -> dict:
    """The compact metrics file for ``dvc exp show``: LIIF per scale and its margins, first dataset only
    (empty without a LIIF run; a value that cannot be computed is left out, never written as NaN)."""
    out = {}
    datasets = study.datasets()
    if not datasets or "liif" not in study.table(datasets[0]).index:
        return out
    dataset = datasets[0]
    base, table, noise = study.base(dataset), study.table(dataset), study.noise(dataset)
    for s in study.scales(dataset):
        values = {f"liif_x{s}": base.get(s, np.nan), f"seed_sd_x{s}": noise.get(s, np.nan)}
        for other, key in (("bicubic", "vs_bicubic"), ("metasr", "vs_metasr")):
            if other in table.index:
                values[f"{key}_x{s}"] = base.get(s, np.nan) - table.loc[other, s]
        out.update({k: round(float(v), 3) for k, v in values.items() if not pd.isna(v)})
    return dict(sorted(out.items(), key=lambda kv: (int(kv[0].rsplit("_x", 1)[1]), kv[0])))


# ---------------------------------------------------------------- plots


def colours(variants) -> dict:
    """One colour per variant in every figure: strong colours first, LIIF, Bicubic and MetaSR first of all."""
    tab20 = plt.get_cmap("tab20").colors
    palette = tab20[0::2] + tab20[1::2]
    main = [v for v in MAIN if v in variants]
    order = main + sorted(v for v in variants if v not in main)
    return {v: palette[i % len(palette)] for i, v in enumerate(order)}


def plot_psnr_vs_scale(study: Study, dataset: str, path: Path, variants: list[str] | None = None) -> str:
    table = study.table(dataset)
    variants = [v for v in (variants or table.index) if v in table.index and not study.is_replicate(v)]
    scales = study.scales(dataset)
    palette = colours(table.index)
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for variant in variants:
        values = study.base(dataset, variant) if variant in study.replicates else table.loc[variant]
        style = "-o" if variant in MAIN else "--."
        ax.plot(
            scales,
            [values[s] for s in scales],
            style,
            label=variant,
            color=palette[variant],
            linewidth=2.2 if variant == "liif" else 1.2,
        )
        if variant in study.replicates:
            sd = study.noise(dataset, variant)
            ax.fill_between(
                scales,
                [values[s] - 2 * sd[s] for s in scales],
                [values[s] + 2 * sd[s] for s in scales],
                color=palette[variant],
                alpha=0.2,
                linewidth=0,
            )
    ax.axvspan(min(scales) * 0.9, 4.2, color="0.92", zorder=0, label="training range (x1-x4)")
    ax.set_xscale("log")
    ax.set_xticks(scales, [f"x{s}" for s in scales])
    ax.minorticks_off()
    ax.set_xlabel("up-sampling scale (log axis)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"PSNR against scale, {dataset} test set")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    band = " LIIF's band is its mean ± twice the seed-to-seed standard deviation." if study.replicates else ""
    return f"Mean PSNR on the {dataset} test images per scale (log axis); grey: the x1-x4 training range.{band}"


def plot_training(history: pd.DataFrame, path: Path, *, validation: str) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.3))
    palette = colours(list(dict.fromkeys(history["variant"])))
    for variant, rows in history.groupby("variant", sort=False):
        a.plot(rows["epoch"], rows["loss"], label=variant, color=palette[variant], linewidth=1)
        b.plot(rows["epoch"], rows["val_psnr"], label=variant, color=palette[variant], linewidth=1)
    a.set(xlabel="epoch", ylabel="L1 loss (normalised RGB)", title="training loss", yscale="log")
    b.set(xlabel="epoch", ylabel="PSNR (dB)", title="validation PSNR (each variant at its own training scales)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"Training loss and validation PSNR per epoch; validation patches come from {validation}."


# ---------------------------------------------------------------- paper


def paper_rows(study: Study, dataset: str, encoders: dict[str, str | None]) -> pd.DataFrame:
    """Ours beside the paper's, only where the paper has a row with the variant's encoder and our protocol.

    ``encoders`` maps each variant to its encoder name (None for Bicubic). On DIV2K-protocol data a variant
    is set against its own T1/T3/T4 row (``liif``, ``rdn-liif`` ...); on a benchmark set only RDN variants
    are, against T2 (``rdn-metasr`` -> RDN-MetaSR, ``rdn-upsample-x2`` -> per-scale RDN). Differences are
    taken from the LIIF with the same encoder. On data other than DIV2K only differences are shown.
    """
    table, base = study.table(dataset), study.base(dataset)
    t2 = benchmark_set(dataset)
    rows = []
    for variant in table.index:
        encoder = encoders.get(variant)
        if study.is_replicate(variant) or (t2 and encoder != "rdn"):
            continue
        reference = "rdn-liif" if encoder == "rdn" else "liif"
        name = variant.removeprefix("rdn-") if t2 else variant
        ours_reference = base if reference == "liif" else table.loc[reference] if reference in table.index else None
        for s in study.scales(dataset):
            ours = base[s] if variant == "liif" else table.loc[variant, s]
            theirs = paper_benchmark(dataset, name, s) if t2 else paper_div2k(name, s)
            theirs_reference = paper_benchmark(dataset, "liif", s) if t2 else paper_div2k(reference, s)
            if theirs is None or pd.isna(ours):
                continue
            row = {"variant": variant, "scale": f"x{s}", "ours": ours, "paper": theirs}
            if variant != reference and theirs_reference is not None and ours_reference is not None:
                row["ours minus LIIF"] = ours - ours_reference[s]
                row["paper minus LIIF"] = theirs - theirs_reference
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty and not dataset.startswith("div2k") and not t2:  # other data: absolute values not comparable
        frame = frame.drop(columns=["ours", "paper"])
        frame = frame.dropna(subset=["ours minus LIIF"]) if "ours minus LIIF" in frame else frame.iloc[0:0]
    return frame


def paper_table_name(dataset: str) -> str:
    t2 = benchmark_set(dataset)
    return f"T2 ({t2}, RDN encoder, Y-PSNR)" if t2 else "T1/T3/T4 (DIV2K validation, EDSR-baseline, RGB PSNR)"


__all__ = ["DIV2K", "Study", "comparison", "differences", "headline", "load_scores", "verdict"]
