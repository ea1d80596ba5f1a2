"""The markdown report: our PSNR tables and plots next to the paper's, per research question.

Absolute numbers of a small CPU profile on the sample suite are not comparable
with the paper's DIV2K numbers; what is comparable is the *direction* of each
effect (a variant minus LIIF at the same scale), so the report shows those
differences side by side with the paper's.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from liif.paper import CELEBA, benchmark_set, paper_benchmark, paper_div2k  # noqa: E402

IN_DISTRIBUTION = (2, 3, 4)
QUESTIONS = [
    ("T1", "Does one LIIF trained on x1-x4 beat Bicubic and match MetaSR in-distribution, and win out of distribution?",
     ["bicubic", "metasr", "upsample-x2", "upsample-x3", "upsample-x4"]),
    ("T3", "Do cell decoding (-c), feature unfolding (-u), local ensemble (-e) and decoder depth (-d) help?",
     ["liif-c", "liif-u", "liif-e", "liif-d"]),
    ("T4", "Is continuous x1-x4 training better than training on one scale?", ["liif-x2", "liif-x3", "liif-x4"]),
]  # fmt: skip
BENCHMARK_QUESTION = ("T2", "Does this hold on a standard benchmark with Y-PSNR?",
                      ["bicubic", "metasr", "upsample-x2", "upsample-x3", "upsample-x4"])  # fmt: skip


def _scales(metrics: dict, dataset: str) -> list[int]:
    found = {int(k[1:]) for per in metrics.values() for k in per.get(dataset, {}) if k.startswith("x")}
    return sorted(found)


def size_varied_table(metrics: dict) -> str | None:
    """T5: per task L-H, the up-sampling baseline (GTs resized) against LIIF (GTs at native sizes)."""
    rows = {}
    for variant, per in metrics.items():
        for values in per.values():
            for task, value in values.items():
                if not task.startswith("x"):
                    kind = "upsample" if "upsample" in variant else "liif"
                    rows.setdefault(task, {})[kind] = value
    if not rows:
        return None
    lines = ["| task L-H | up-sampling (GTs resized) | LIIF (native GTs) | LIIF gain | paper: up-sampling / LIIF / gain |",
             "|---|---|---|---|---|"]  # fmt: skip
    for task, r in sorted(rows.items(), key=lambda kv: -int(kv[0].split("-")[0])):
        paper = CELEBA.get(task, {})
        gain = r["liif"] - r["upsample"] if {"liif", "upsample"} <= r.keys() else None
        paper_gain = paper["liif"] - paper["upsample"] if paper else None
        lines.append(
            f"| {task} | {_fmt(r.get('upsample'))} | {_fmt(r.get('liif'))} | {_fmt(gain, signed=True)} | "
            f"{_fmt(paper.get('upsample'))} / {_fmt(paper.get('liif'))} / {_fmt(paper_gain, signed=True)} |"
        )
    return "\n".join(lines)


def _fmt(value, digits=2, signed=False):
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def psnr_table(metrics: dict, dataset: str) -> str:
    scales = _scales(metrics, dataset)
    head = "| variant | " + " | ".join(f"x{s}" + ("" if s in IN_DISTRIBUTION else " (OOD)") for s in scales) + " |"
    lines = [head, "|---|" + "---|" * len(scales)]
    best = {
        s: max((m[dataset].get(f"x{s}", -1) for m in metrics.values() if dataset in m), default=None) for s in scales
    }
    for variant, m in metrics.items():
        if dataset not in m:  # e.g. the size-varied study's variants, evaluated on their own task only
            continue
        cells = []
        for s in scales:
            v = m[dataset].get(f"x{s}")
            cells.append(f"**{v:.2f}**" if v is not None and v == best[s] else _fmt(v))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def delta_table(metrics: dict, dataset: str, variants: list[str]) -> str | None:
    """Each variant minus LIIF, ours and the paper's (T2 on a benchmark set, else DIV2K), per scale.

    None when no variant of the question is in ``metrics``.
    """
    rows = [v for v in variants if dataset in metrics.get(v, {})]
    if not rows:
        return None

    def paper(variant: str, scale: int) -> float | None:
        return paper_benchmark(dataset, variant, scale) if benchmark_set(dataset) else paper_div2k(variant, scale)

    scales = _scales(metrics, dataset)
    lines = ["| variant | " + " | ".join(f"x{s} ours / paper" for s in scales) + " |", "|---|" + "---|" * len(scales)]
    base = metrics.get("liif", {}).get(dataset, {})
    for variant in rows:
        cells = []
        for s in scales:
            ours = metrics[variant][dataset].get(f"x{s}")
            mine = None if ours is None or f"x{s}" not in base else ours - base[f"x{s}"]
            p, pl = paper(variant, s), paper("liif", s)
            theirs = None if p is None or pl is None else p - pl
            cells.append(f"{_fmt(mine, signed=True)} / {_fmt(theirs, signed=True)}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(metrics: dict, dataset: str) -> list[str]:
    """Plain-language answers that the numbers support, each with its evidence."""
    out = []
    liif = metrics.get("liif", {}).get(dataset, {})

    def compare(other: str, scales, claim: str):
        theirs = metrics.get(other, {}).get(dataset, {})
        diffs = {s: liif[f"x{s}"] - theirs[f"x{s}"] for s in scales if f"x{s}" in liif and f"x{s}" in theirs}
        if not diffs:
            return
        wins = [s for s, d in diffs.items() if d > 0]
        detail = ", ".join(f"x{s} {d:+.2f}" for s, d in diffs.items())
        verdict = "yes" if len(wins) == len(diffs) else ("partly" if wins else "no")
        out.append(f"- {claim}: **{verdict}** (LIIF minus {other}: {detail} dB)")

    scales = _scales(metrics, dataset)
    ood = [s for s in scales if s not in IN_DISTRIBUTION]
    compare("bicubic", IN_DISTRIBUTION, "LIIF beats Bicubic in-distribution (x2-x4)")
    compare("bicubic", ood, "LIIF beats Bicubic out of distribution")
    margin = "paper, T2: yes, by 0.08-0.21 dB" if benchmark_set(dataset) else "paper: yes, by 0.11-0.16 dB"
    compare("metasr", ood, f"LIIF beats MetaSR at every OOD scale ({margin})")
    compare("liif-c", IN_DISTRIBUTION, "Cell decoding helps in-distribution (paper: yes, +0.14 dB at x2)")
    return out


def _colours(variants) -> dict:
    """One colour per variant, the same in every figure (the default cycle repeats after 10): the strong
    colours first, LIIF, Bicubic and MetaSR first of all."""
    tab20 = plt.get_cmap("tab20").colors
    palette = tab20[0::2] + tab20[1::2]
    main = [v for v in ("liif", "bicubic", "metasr") if v in variants]
    order = main + sorted(v for v in variants if v not in main)
    return {v: palette[i % len(palette)] for i, v in enumerate(order)}


def plot_psnr_vs_scale(metrics: dict, dataset: str, path: Path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    scales = _scales(metrics, dataset)
    colours = _colours(metrics)
    for variant, m in metrics.items():
        pts = [(s, m[dataset][f"x{s}"]) for s in scales if f"x{s}" in m.get(dataset, {})]
        if pts:
            style = "-o" if variant in ("liif", "bicubic", "metasr") else "--."
            ax.plot(*zip(*pts), style, label=variant, linewidth=2 if variant == "liif" else 1, color=colours[variant])
    ax.axvspan(min(scales) - 0.2, 4.2, color="0.92", zorder=0)
    ax.set_xscale("log")
    ax.set_xticks(scales, [f"x{s}" for s in scales])
    ax.set_xlabel("up-sampling scale (shaded: training range)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"PSNR vs scale on {dataset}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(histories: dict, path: Path):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    colours = _colours(histories)
    for variant, rows in histories.items():
        if rows:
            epochs = [r["epoch"] for r in rows]
            a.plot(epochs, [r["loss"] for r in rows], label=variant, color=colours[variant])
            b.plot(epochs, [r["val_psnr"] for r in rows], label=variant, color=colours[variant])
    a.set(xlabel="epoch", ylabel="L1 loss (normalised RGB)", title="training loss")
    b.set(xlabel="epoch", ylabel="PSNR (dB)", title="validation PSNR at each variant's own training scales")
    if any(histories.values()):
        b.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text().strip().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, map(float, line.split("\t")))) for line in lines[1:]]


def write_wide_csv(path: Path, key: str, series: dict[str, dict]):
    """A CSV with one column per variant, for ``dvc plots``."""
    xs = sorted({x for s in series.values() for x in s})
    names = list(series)
    rows = [",".join([key, *names])]
    for x in xs:
        rows.append(",".join([str(x), *(f"{series[n][x]:.4f}" if x in series[n] else "" for n in names)]))
    path.write_text("\n".join(rows) + "\n")


def build_report(
    *, metrics_dir: Path, models_dir: Path, out_dir: Path, title: str, notes: list[str], variants: list[str]
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    (out_dir / "figures").mkdir(exist_ok=True)
    metrics = {p.stem: json.loads(p.read_text()) for p in sorted(metrics_dir.glob("*.json")) if p.stem in variants}
    order = ["liif", "bicubic", "metasr"]
    metrics = dict(sorted(metrics.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0])))
    histories = {v: read_history(models_dir / v / "history.tsv") for v in metrics}
    summaries = {}
    for v in metrics:
        path = models_dir / v / "summary.json"
        summaries[v] = json.loads(path.read_text()) if path.is_file() else {}
    datasets = sorted({d for m in metrics.values() for d, per in m.items() if any(k.startswith("x") for k in per)})

    lines = [f"# {title}", "", *notes, ""]
    for dataset in datasets:
        plot = out_dir / "figures" / f"psnr_vs_scale_{dataset}.png"
        plot_psnr_vs_scale(metrics, dataset, plot)
        series = {v: {s: m[dataset][f"x{s}"] for s in _scales(metrics, dataset) if f"x{s}" in m.get(dataset, {})}
                  for v, m in metrics.items()}  # fmt: skip
        write_wide_csv(out_dir / "plots" / f"psnr_vs_scale_{dataset}.csv", "scale", series)
        lines += [
            f"## PSNR on `{dataset}` (dB)",
            "",
            psnr_table(metrics, dataset),
            "",
            f"![PSNR vs scale](figures/{plot.name})",
            "",
        ]
        lines += ["### What the numbers say", "", *verdicts(metrics, dataset), ""]
        t2 = benchmark_set(dataset)
        where = f"{t2} (T2: RDN encoder; its per-scale RDN stands for upsample-x<k>)" if t2 else "DIV2K"
        for tag, question, variants in [BENCHMARK_QUESTION] if t2 else QUESTIONS:
            table = delta_table(metrics, dataset, variants)
            if table is None:
                continue
            lines += [f"### {tag}: {question}", "",
                      f"Variant minus LIIF in dB: ours on this data / the paper's on {where} (negative: the variant is "
                      "worse).", "", table, ""]  # fmt: skip
    t5 = size_varied_table(metrics)
    if t5:
        lines += ["## T5: can supervision at the ground truths' native sizes beat resizing them to one size?", "",
                  "CelebA-HQ, RGB PSNR at the target size H, no shave (spec 3.4); models chosen by epoch-best.", "",
                  t5, ""]  # fmt: skip
    plot_training(histories, out_dir / "figures" / "training.png")
    write_wide_csv(out_dir / "plots" / "val_psnr.csv", "epoch",
                   {v: {int(r["epoch"]): r["val_psnr"] for r in h} for v, h in histories.items() if h})  # fmt: skip
    lines += ["## Training", "", "![training curves](figures/training.png)", "",
              "| variant | epochs | final loss | best val PSNR | train time (s) | MLflow run |", "|---|---|---|---|---|---|"]  # fmt: skip
    for v, s in summaries.items():
        lines.append(
            f"| {v} | {s.get('epochs', '–')} | {_fmt(s.get('final_loss'), 4)} | {_fmt(s.get('best_val_psnr'))} | "
            f"{_fmt(s.get('train_seconds'), 0)} | `{s.get('mlflow_run_id') or '–'}` |"
        )
    report = out_dir / "README.md"
    report.write_text("\n".join(lines) + "\n")
    return report
