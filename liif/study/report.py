"""The report's numbers and verdicts: results loaded into pandas, every comparison judged against the seed noise.

Results come from the DVC metrics (``metrics/eval/<variant>.json``, means keyed by metric, and the
per-image ``.tsv``) and the training summaries. Every verdict is on PSNR, the paper's metric; the other
metrics (SSIM, ...) are shown beside it. Which variant is what comes from the roles
declared in ``params.yaml`` (``liif.config.roles``), never from names. A difference counts
only when it exceeds twice the seed-to-seed standard deviation of the base model at
that scale (its ``seed_of`` replicates); otherwise it reads "within noise". Where the
paper's own effect is smaller than that, a difference within noise says nothing about the
paper and the verdict reads "not resolvable at this budget" instead. This
module draws nothing (``liif.study.figures``) and renders nothing (``liif.study.figures``).
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from liif.config.roles import SIZE_VARIED_METHODS, Roles
from liif.data.layout import PreparedData
from liif.errors import UserError
from liif.eval.scores import diverged
from liif.files import HISTORY, SUMMARY
from liif.images import list_images
from liif.metrics import METRICS, PAPER_METRIC
from liif.study.paper import benchmark_set, celeba_effect, in_t2, paper_benchmark, paper_div2k, paper_row

# ---------------------------------------------------------------- loading


class ReportError(UserError):
    """An input the report cannot stand behind (a missing or non-numeric metric); one line saying what to rerun."""


SCALE_KEY = re.compile(r"x([1-9][0-9]*)")  # x2, x12: one spelling per scale, so x02 never sits beside x2
TASK_KEY = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")  # a size-varied task L-H (liif.eval.scores)


def _unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    repeated = next((key for key in keys if keys.count(key) > 1), None)
    if repeated is not None:
        raise ValueError(f"key {repeated!r} appears twice")
    return dict(pairs)


def load_scores(metrics_dir: Path, variants: list[str]) -> pd.DataFrame:
    """Long table ``variant, dataset, scale`` and one column per metric, psnr first (scale: 2, 3, ... or a task
    ``"32-64"``). Every variant must have its metrics file ``{metric: {dataset: {x<scale>: mean}}}`` with psnr,
    every metric must be registered and cover psnr's datasets and scales, every key must be a scale ``x<n>`` or a
    task ``L-H``, and every value a finite number: the report never prints nan, never reads one scale under two
    names and never silently drops a variant."""
    frames = []
    for variant in variants:
        path = metrics_dir / f"{variant}.json"
        rerun = f"rerun dvc repro -f evaluate@{variant}"
        if not path.is_file():
            raise ReportError(f"{path}: missing; run dvc repro evaluate@{variant} (or remove {variant} from variants)")
        try:
            metrics = json.loads(path.read_text(), object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise ReportError(f"{path}: not JSON ({e.msg}); {rerun}") from None
        except ValueError as e:
            raise ReportError(f"{path}: {e}; {rerun}") from None
        shape = "{metric: {dataset: {x<scale>: mean}}}"
        if not isinstance(metrics, dict):
            raise ReportError(f"{path}: expected {shape}, found {metrics!r:.40}; {rerun}")
        for name in metrics:
            if name not in METRICS:
                raise ReportError(
                    f"{path}: {name!r} is not a metric of liif/metrics ({', '.join(METRICS.names())}); the file "
                    f"holds {shape}; {rerun}"
                )
        if PAPER_METRIC not in metrics:
            raise ReportError(f"{path}: no {PAPER_METRIC}, the paper's metric every verdict is on; {rerun}")
        values = {}
        for name in [PAPER_METRIC, *(m for m in metrics if m != PAPER_METRIC)]:
            values[name] = _metric_values(path, name, metrics[name], rerun)
            if values[name].keys() != values[PAPER_METRIC].keys():
                key = next(iter(values[name].keys() ^ values[PAPER_METRIC].keys()))
                raise ReportError(
                    f"{path}: {key[0]} {key[1]} is in one of {PAPER_METRIC} and {name}, not both; every metric "
                    f"covers the same datasets and scales; {rerun}"
                )
        frame = pd.DataFrame(
            [{"variant": variant, "dataset": d, "scale": k} for d, k in values[PAPER_METRIC]],
            columns=["variant", "dataset", "scale"],
        )
        for name, per in values.items():
            frame[name] = list(per.values()) if name == PAPER_METRIC else [per[key] for key in values[PAPER_METRIC]]
        frame["scale"] = [int(SCALE_KEY.fullmatch(k)[1]) if SCALE_KEY.fullmatch(k) else k for k in frame["scale"]]
        frames.append(frame)
    columns = ["variant", "dataset", "scale", PAPER_METRIC]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _metric_values(path: Path, name: str, per_dataset, rerun: str) -> dict:
    """``{(dataset, key): value}`` of one metric of a metrics file, every key and value checked."""
    if not isinstance(per_dataset, dict):
        raise ReportError(f"{path}: {name} is {per_dataset!r:.40}, not a mapping of dataset to scales; {rerun}")
    out = {}
    for dataset, per in per_dataset.items():
        if not isinstance(per, dict):
            raise ReportError(f"{path}: {name} {dataset} is {per!r:.40}, not a mapping of x<scale> to {name}; {rerun}")
        for key, value in per.items():
            if not SCALE_KEY.fullmatch(key) and not TASK_KEY.fullmatch(key):
                raise ReportError(
                    f"{path}: {name} {dataset} key {key!r} is neither a scale x<n> (x2, x12) nor a task L-H; {rerun}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise ReportError(f"{path}: {name} {dataset} {key} is {value!r}, not a finite {name}; {rerun}")
            out[dataset, key] = value
    return out


def check_replicates(scores: pd.DataFrame, roles: Roles, metrics_dir: Path):
    """Every seed of a variant is scored on the same datasets and scales, and not with the very same numbers:
    otherwise a mean and its spread would mix one, two or three seeds per scale, or measure no noise at all."""
    for variant, extra in roles.replicates().items():
        mine = scores[scores["variant"] == variant]
        expected = set(zip(mine["dataset"], mine["scale"]))
        for replicate in extra:
            theirs = scores[scores["variant"] == replicate]
            found = set(zip(theirs["dataset"], theirs["scale"]))
            for (dataset, scale), (has, lacks) in (
                *((key, (replicate, variant)) for key in sorted(found - expected, key=str)),
                *((key, (variant, replicate)) for key in sorted(expected - found, key=str)),
            ):
                key = f"x{scale}" if isinstance(scale, int) else scale
                raise ReportError(
                    f"{metrics_dir / f'{has}.json'}: {dataset} {key} is not in {metrics_dir / f'{lacks}.json'}; "
                    f"every seed of {variant} is evaluated on the same scales: rerun dvc repro -f "
                    f"evaluate@{variant} evaluate@{replicate}"
                )
            same = mine.set_index(["dataset", "scale"])[PAPER_METRIC].sort_index()
            if len(same) and same.equals(theirs.set_index(["dataset", "scale"])[PAPER_METRIC].sort_index()):
                raise ReportError(
                    f"{metrics_dir / f'{replicate}.json'}: the same PSNR as {metrics_dir / f'{variant}.json'} at "
                    f"every scale, so no seed noise is measured; rerun dvc repro -f train@{replicate} "
                    f"evaluate@{replicate}"
                )


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
        path = models_dir / variant / SUMMARY
        if path.is_file():
            rows.append(json.loads(path.read_text()))
    return pd.DataFrame(rows)


def load_history(models_dir: Path, variants: list[str]) -> pd.DataFrame:
    frames = []
    for variant in variants:
        path = models_dir / variant / HISTORY
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
    roles: Roles = field(default_factory=lambda: Roles({}))

    @property
    def replicates(self) -> dict[str, list[str]]:
        return self.roles.replicates()

    @property
    def metrics(self) -> list[str]:
        """The metrics scored, psnr first (the columns after variant, dataset and scale)."""
        return [c for c in self.scores.columns if c not in ("variant", "dataset", "scale")]

    def datasets(self) -> list[str]:
        scaled = self.scores[self.scores["scale"].map(lambda s: isinstance(s, int))]
        return list(dict.fromkeys(scaled["dataset"]))

    def scales(self, dataset: str) -> list[int]:
        s = self.scores[(self.scores["dataset"] == dataset) & self.scores["scale"].map(lambda v: isinstance(v, int))]
        return sorted(set(s["scale"]))

    def in_distribution(self, dataset: str) -> list[int]:
        return self.roles.in_distribution(self.scales(dataset))

    def out_of_distribution(self, dataset: str) -> list[int]:
        inside = set(self.in_distribution(dataset))
        return [s for s in self.scales(dataset) if s not in inside]

    def table(self, dataset: str, metric: str = PAPER_METRIC) -> pd.DataFrame:
        """One metric (PSNR by default), variants x scales."""
        s = self.scores[self.scores["dataset"] == dataset]
        s = s[s["scale"].map(lambda v: isinstance(v, int))]
        return s.pivot(index="variant", columns="scale", values=metric)

    def seeds(self, variant: str) -> list[str]:
        return [variant, *self.replicates.get(variant, [])]

    def base(self, dataset: str, variant: str | None = None, metric: str = PAPER_METRIC) -> pd.Series:
        """The mean over a variant's seeds (the base model's by default), per scale."""
        table = self.table(dataset, metric)
        present = [v for v in self.seeds(variant or self.roles.base) if v in table.index]
        return table.loc[present].mean() if present else pd.Series(dtype=float)

    def noise(self, dataset: str, variant: str | None = None, metric: str = PAPER_METRIC) -> pd.Series:
        """Seed-to-seed standard deviation per scale; NaN where none was measured: fewer than two seeds, or seeds
        that scored the same (a zero spread would make every difference "resolvable")."""
        table = self.table(dataset, metric)
        present = [v for v in self.seeds(variant or self.roles.base) if v in table.index]
        sd = table.loc[present].std(ddof=1) if len(present) > 1 else pd.Series(np.nan, index=table.columns)
        return sd.where(sd > 0)

    def successors(self) -> dict[str, str]:
        """The successors (role successor) -> the study's LIIF of their own encoder; one whose encoder no LIIF of
        the study has is left out (nothing to set it against like for like)."""
        return {
            v: liif
            for v, liif in self.roles.successors().items()
            if liif and self.roles.of[liif].encoder == self.roles.of[v].encoder
        }

    def is_replicate(self, variant: str) -> bool:
        return any(variant in extra for extra in self.replicates.values())

    def main(self) -> list[str]:
        """The base model, Bicubic and MetaSR: the variants every figure shows first."""
        return [v for v in (self.roles.base, self.roles.bicubic, self.roles.metasr) if v]


UNRESOLVABLE = "not resolvable at this budget"
NO_NOISE = "no seed noise measured: not resolvable"  # one seed, or seeds that scored the same


def resolvable(effect: float | None, noise: float) -> bool:
    """Whether an effect of this size exceeds twice the seed-to-seed deviation (the run's resolution)."""
    measured = not pd.isna(noise) and noise > 0  # a zero spread (identical seeds) is no measurement
    return effect is not None and not pd.isna(effect) and measured and abs(effect) > 2 * noise


def verdict(diff: float, noise: float, paper: float | None = None) -> str:
    """ "better" / "worse" when |diff| exceeds twice the seed-to-seed deviation, else "within noise", or "not
    resolvable at this budget" when the paper's effect (``paper``, same sign convention) is itself no larger than
    twice that deviation: a null result then says nothing about the paper's claim. No verdict without a measured
    noise (NaN or zero: one seed, or identical seeds)."""
    if pd.isna(diff):
        return "–"
    if pd.isna(noise) or noise <= 0:
        return NO_NOISE
    if abs(diff) <= 2 * noise:
        if paper is not None and not pd.isna(paper) and not resolvable(paper, noise):
            return f"{UNRESOLVABLE} (paper: {paper:+.2f} dB; resolvable here: ±{2 * noise:.2f} dB)"
        return "within noise"
    return "better" if diff > 0 else "worse"


def paper_effect(study: Study, dataset: str, variant: str | None, scale: int) -> float | None:
    """The paper's ``variant`` minus its LIIF with the same encoder at ``scale`` (T1-T4, found by declared roles),
    or None where the paper has no row for the variant, its encoder or this dataset's protocol."""
    roles = study.roles
    role = roles.of.get(variant)
    if role is None:
        return None
    liif_of = roles.liif_by_encoder()
    reference = liif_of.get(role.encoder, roles.base)  # Bicubic (no encoder): against the base
    if reference is None:
        return None
    rows = paper_row(role), paper_row(roles.of[reference])
    if None in rows:
        return None
    t2 = benchmark_set(dataset)
    values = [paper_benchmark(dataset, row, scale) if t2 else paper_div2k(row, scale) for row in rows]
    return None if None in values else values[0] - values[1]


def comparison(study: Study, dataset: str, other: str | None, scales: list[int] | None = None) -> pd.DataFrame:
    """LIIF (mean over seeds) minus ``other`` per scale, with twice the seed noise (the smallest difference the run
    resolves), the paper's difference where it has one, and the verdict for LIIF."""
    base, noise = study.base(dataset), study.noise(dataset)
    table = study.table(dataset)
    if other not in table.index:
        return pd.DataFrame()
    rows = []
    for s in study.scales(dataset) if scales is None else scales:
        if s not in table.columns or pd.isna(table.loc[other, s]) or pd.isna(base.get(s)):
            continue
        diff = base[s] - table.loc[other, s]
        theirs = paper_effect(study, dataset, other, s)
        paper = -theirs if theirs is not None else None
        rows.append(
            {
                "scale": f"x{s}",
                "LIIF": base[s],
                other: table.loc[other, s],
                "LIIF minus": diff,
                "2 x seed sd": 2 * noise.get(s, np.nan),
                "paper LIIF minus": np.nan if paper is None else paper,
                "LIIF is": verdict(diff, noise.get(s, np.nan), paper),
            }
        )
    return pd.DataFrame(rows)


def successor_comparison(study: Study, dataset: str, variant: str, scales: list[int] | None = None) -> pd.DataFrame:
    """A later model (role successor, such as LTE) minus the study's LIIF of its encoder per scale, with that
    LIIF's seed noise, the published difference where there is one, and the verdict for the successor: the
    reverse of ``comparison``'s sign, as the successor's paper states it."""
    liif = study.successors().get(variant)
    table = study.table(dataset)
    if liif not in table.index or variant not in table.index:
        return pd.DataFrame()
    title = study.roles.of[variant].title
    ours, reference, noise = study.base(dataset, variant), study.base(dataset, liif), study.noise(dataset, liif)
    rows = []
    for s in study.scales(dataset) if scales is None else scales:
        if pd.isna(ours.get(s)) or pd.isna(reference.get(s)):
            continue
        diff = ours[s] - reference[s]
        published = paper_effect(study, dataset, variant, s)
        rows.append(
            {
                "scale": f"x{s}",
                "LIIF": reference[s],
                title: ours[s],
                f"{title} minus LIIF": diff,
                "2 x seed sd": 2 * noise.get(s, np.nan),
                f"published {title} minus LIIF": np.nan if published is None else published,
                f"{title} is": verdict(diff, noise.get(s, np.nan), published),
            }
        )
    return pd.DataFrame(rows)


def wins(study: Study, dataset: str, a: str, b: str, scales: list[int]) -> str:
    """On how many (image, scale) pairs ``a`` scores above ``b``: the per-image evidence behind a mean."""
    p = study.per_image[study.per_image["dataset"] == dataset]
    p = p[p["scale"].isin(scales)]
    left = p[p["variant"] == a].set_index(["image", "scale"])[PAPER_METRIC]
    right = p[p["variant"] == b].set_index(["image", "scale"])[PAPER_METRIC]
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
    """``diffs`` (variants x scales) as text cells such as "-0.52 (worse)", judged against the seed noise of each
    scale and the paper's own difference of that variant from LIIF."""
    noise = study.noise(dataset)
    cells = {
        column: [
            f"{d:+.2f} ({verdict(d, noise.get(int(column[1:]), np.nan), paper_effect(study, dataset, v, int(column[1:])))})"
            for v, d in diffs[column].items()
        ]
        for column in diffs.columns
    }
    return pd.DataFrame(cells, index=diffs.index)


def summary_word(verdicts: pd.Series) -> str:
    """One word for a column of verdicts: yes (all better), no (worse, none better), within noise, or mixed;
    qualified when some scales were not resolvable or had no seed noise to judge by."""
    if verdicts.empty:
        return "not run"
    found = verdicts.str.replace(r" \(.*\)", "", regex=True)
    unjudged = verdicts == NO_NOISE
    if unjudged.all():
        return NO_NOISE
    unresolvable = found == UNRESOLVABLE
    if (unresolvable | unjudged).all():
        return UNRESOLVABLE
    found = set(found[~unresolvable & ~unjudged])
    word = {frozenset({"better"}): "yes", frozenset({"within noise"}): "within noise"}.get(frozenset(found))
    if word is None:
        word = "no" if "better" not in found and "worse" in found else "mixed"
    if unresolvable.any():
        word += f" ({UNRESOLVABLE} at {int(unresolvable.sum())} of {len(unresolvable)} scales)"
    if unjudged.any():
        word += f" (no seed noise measured at {int(unjudged.sum())} of {len(unjudged)} scales)"
    return word


def component_effects(study: Study, dataset: str) -> pd.DataFrame:
    """RQ4: what each ablated component adds in-distribution, LIIF minus the ablation (positive: it helps),
    with its verdict ("not resolvable at this budget" where the paper's own effect is below this run's
    resolution at every in-distribution scale): one row per ablation variant."""
    ablations = study.roles.ablations()
    diffs = differences(study, dataset, list(ablations))
    noise = study.noise(dataset)
    rows = []
    for variant in diffs.index:
        added = {s: -diffs.loc[variant, f"x{s}"] for s in study.in_distribution(dataset) if f"x{s}" in diffs}
        paper = {s: paper_effect(study, dataset, variant, s) for s in added}
        paper = {s: None if v is None else -v for s, v in paper.items()}
        said = {s: verdict(d, noise.get(s, np.nan), paper[s]).split(" (")[0] for s, d in added.items()}
        words = {word for word in said.values() if word != NO_NOISE}
        unjudged = [s for s, word in said.items() if word == NO_NOISE]
        if not words:
            effect = NO_NOISE
        elif words == {UNRESOLVABLE}:
            judged = [s for s in added if s not in unjudged]
            effect = (
                f"{UNRESOLVABLE} (paper: " + ", ".join(f"x{s} {paper[s]:+.2f}" for s in judged) + " dB; resolvable "
                "here: " + ", ".join(f"±{2 * noise[s]:.2f}" for s in judged) + " dB)"
            )
        elif words == {"better"}:
            effect = "helps"
        elif "worse" in words and "better" not in words:
            effect = "hurts"
        else:
            effect = "within noise or mixed"
        if words and unjudged:
            effect += " (no seed noise measured at " + ", ".join(f"x{s}" for s in unjudged) + ")"
        component, lacks = ablations[variant]
        rows.append({"variant": variant, "component": component, "lacks": lacks, "effect": effect, "added": added})
    return pd.DataFrame(rows, columns=["variant", "component", "lacks", "effect", "added"])


def resolution(study: Study, dataset: str) -> pd.DataFrame:
    """Which of the paper's effects this run can resolve: per compared variant, the paper's LIIF minus it at each
    scale beside twice this run's seed sd (the smallest difference it resolves), and whether the first exceeds
    the second. Without seed replicates nothing is resolvable."""
    roles, noise = study.roles, study.noise(dataset)
    compared = [roles.bicubic, roles.metasr, *roles.ablations(), *roles.single_scale(), *roles.fixed_scale()]
    compared += [v for v, liif in study.successors().items() if liif == roles.base]
    rows = []
    for variant in dict.fromkeys(v for v in compared if v):
        for s in study.scales(dataset):
            theirs = paper_effect(study, dataset, variant, s)
            if theirs is None:
                continue
            limit = 2 * noise.get(s, np.nan)
            rows.append(
                {
                    "LIIF against": variant,
                    "scale": f"x{s}",
                    "paper LIIF minus": -theirs,
                    "resolvable here (2 x seed sd)": limit,
                    "this run can test it": "yes" if resolvable(theirs, noise.get(s, np.nan)) else "no",
                }
            )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, digits: int = 2, index: bool = True) -> str:
    if frame.empty:
        return "_(no such runs in this profile)_"
    return frame.to_markdown(index=index, floatfmt=f".{digits}f")


def with_spread(study: Study, dataset: str, metric: str = PAPER_METRIC) -> pd.DataFrame:
    """A metric's table (PSNR by default) with LIIF as mean ± sd over its seeds (replicate rows folded into it),
    with the metric's decimals."""
    digits = METRICS.get(metric).shown
    table = study.table(dataset, metric)
    table = table.loc[[v for v in table.index if not study.is_replicate(v)]]
    shown = table.map(lambda v: "–" if pd.isna(v) else f"{v:.{digits}f}").astype(object)  # row-assignable text
    for variant in study.replicates:
        if variant in shown.index:
            mean, sd = study.base(dataset, variant, metric), study.noise(dataset, variant, metric)
            n = len([v for v in study.seeds(variant) if v in study.table(dataset, metric).index])
            for s in table.columns:
                spread = f"± {sd[s]:.{digits}f} " if not pd.isna(sd[s]) else ""
                measured = "" if spread else ", no seed noise measured"
                shown.loc[variant, s] = f"{mean[s]:.{digits}f} {spread}({n} seeds{measured})"
    main = [v for v in study.main() if v in shown.index]
    shown = shown.loc[main + [v for v in shown.index if v not in main]]
    inside = set(study.in_distribution(dataset))
    shown.columns = [f"x{s}" + ("" if s in inside else " (OOD)") for s in table.columns]
    return shown


def size_varied(study: Study) -> pd.DataFrame:
    """RQ3 / T5: per dataset and task L-H, the up-sampler (GTs resized) against LIIF (GTs at native sizes), judged
    against the seed noise of the size-varied LIIF itself (its ``seed_of`` replicates; without them, no estimate)."""
    rows = []
    for (dataset, (low, high)), methods in study.roles.size_varied().items():
        task = f"{low}-{high}"
        scores = study.scores[(study.scores["dataset"] == dataset) & (study.scores["scale"] == task)]
        values = dict(zip(scores["variant"], scores[PAPER_METRIC]))
        liif_seeds = [v for v in study.seeds(methods.get(SIZE_VARIED_METHODS[0], "")) if v in values]
        liif = np.mean([values[v] for v in liif_seeds]) if liif_seeds else np.nan
        sd = np.std([values[v] for v in liif_seeds], ddof=1) if len(liif_seeds) > 1 else np.nan
        sd = sd if sd > 0 else np.nan  # seeds that scored the same measure no noise
        up = values.get(methods.get(SIZE_VARIED_METHODS[1]), np.nan)
        paper = celeba_effect(task) if "celeba" in dataset else None
        rows.append(
            {
                "dataset": dataset,
                "task L-H": task,
                "up-sampling (GTs resized)": up,
                "LIIF (native GTs)": liif,
                "LIIF minus up-sampling": liif - up,
                "LIIF is": verdict(liif - up, sd),
                "paper (CelebA-HQ)": f"{paper:+.2f}" if paper is not None else "–",
            }
        )
    return pd.DataFrame(rows)


CURVE_COLUMNS = ("recipe", "variant", "epoch", "task")  # what RQ3 reads of a learning-curve study's table


def load_curves(path: Path) -> pd.DataFrame:
    """A learning-curve study's table (``--curves``), checked for the columns RQ3 reads."""
    try:
        curves = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: not a readable CSV table ({type(e).__name__}); regenerate it") from None
    missing = [c for c in CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise ReportError(
            f"{path}: lacks the column(s) {', '.join(missing)}; a learning-curve table has {CURVE_COLUMNS}"
        )
    return curves


def size_varied_curves(curves: pd.DataFrame, roles: Roles) -> pd.DataFrame:
    """Each size-varied pair's LIIF minus its up-sampler at every snapshot of a learning-curve study (the table of
    experiments/learning-curves: recipe, variant, epoch, ``task`` = validation PSNR at the task); its rows are read
    by variant name, the pair and its task by the variants' roles. Rows: dataset, task L-H, recipe, epoch, the two
    scores and LIIF minus up-sampling."""
    rows = []
    for (dataset, (low, high)), methods in roles.size_varied().items():
        liif, up = (methods.get(m) for m in SIZE_VARIED_METHODS)
        if liif is None or up is None or "task" not in curves:
            continue
        pair = curves[curves["variant"].isin([liif, up])].pivot_table(
            index=["recipe", "epoch"], columns="variant", values="task"
        )
        if liif not in pair or up not in pair:
            continue
        pair = pair.dropna(subset=[liif, up]).reset_index()
        for _, r in pair.iterrows():
            rows.append(
                {
                    "dataset": dataset,
                    "task L-H": f"{low}-{high}",
                    "recipe": r["recipe"],
                    "epoch": int(r["epoch"]),
                    "up-sampling (GTs resized)": r[up],
                    "LIIF (native GTs)": r[liif],
                    "LIIF minus up-sampling": r[liif] - r[up],
                }
            )
    return pd.DataFrame(rows)


def turning_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task and recipe of ``size_varied_curves``: its length, LIIF minus up-sampling at the end, and the first
    snapshot from which LIIF's score stays above the up-sampler's to the end ("never" where it ends below). One
    training per method: no noise is measured, so these are positions on the curves, not verdicts."""
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (dataset, task, recipe), group in frame.groupby(["dataset", "task L-H", "recipe"], sort=False):
        group = group.sort_values("epoch")
        ahead = (group["LIIF minus up-sampling"] > 0).tolist()
        behind_after = max((i for i, a in enumerate(ahead) if not a), default=-1)
        stays = group["epoch"].iloc[behind_after + 1] if behind_after + 1 < len(group) else None
        rows.append(
            {
                "dataset": dataset,
                "task L-H": task,
                "recipe": recipe,
                "epochs": int(group["epoch"].max()),
                "LIIF minus up-sampling at the end": group["LIIF minus up-sampling"].iloc[-1],
                "LIIF above from epoch": "never" if stays is None else int(stays),
            }
        )
    return pd.DataFrame(rows).sort_values(["dataset", "task L-H", "epochs"]) if rows else pd.DataFrame()


def headline(study: Study) -> dict:
    """The compact metrics file for ``dvc exp show``: LIIF's PSNR per scale and its margins, first dataset only,
    whether LIIF beats Bicubic beyond noise (by more than 2 seed sd) at each scale and at all of them, and LIIF's
    other metrics (``liif_ssim_x2``) beside (empty without a LIIF run; a value that cannot be computed is left
    out, never written as NaN)."""
    out = {}
    datasets = study.datasets()
    if not datasets or study.roles.base not in study.table(datasets[0]).index:
        return out
    dataset = datasets[0]
    base, table, noise = study.base(dataset), study.table(dataset), study.noise(dataset)
    for s in study.scales(dataset):
        values = {f"liif_x{s}": base.get(s, np.nan), f"seed_sd_x{s}": noise.get(s, np.nan)}
        for other, key in ((study.roles.bicubic, "vs_bicubic"), (study.roles.metasr, "vs_metasr")):
            if other in table.index:
                values[f"{key}_x{s}"] = base.get(s, np.nan) - table.loc[other, s]
        out.update({k: round(float(v), 3) for k, v in values.items() if not pd.isna(v)})
        for metric in study.metrics[1:]:
            value = study.base(dataset, metric=metric).get(s, np.nan)
            if not pd.isna(value):
                out[f"liif_{metric}_x{s}"] = round(float(value), max(3, METRICS.get(metric).shown))
        margin = values.get(f"vs_bicubic_x{s}", np.nan)
        if not pd.isna(margin) and not pd.isna(values[f"seed_sd_x{s}"]):
            out[f"beats_bicubic_x{s}"] = bool(margin > 0 and resolvable(margin, values[f"seed_sd_x{s}"]))
    out = dict(sorted(out.items(), key=lambda kv: (int(kv[0].rsplit("_x", 1)[1]), kv[0])))
    beats = [v for k, v in out.items() if k.startswith("beats_bicubic_x")]
    if beats and len(beats) == len(study.scales(dataset)):
        out["beats_bicubic_every_scale"] = all(beats)
    return out


def tables(study: Study) -> dict[str, pd.DataFrame]:
    """The report's tables by artifact name, for MLflow's table view."""
    out = {}
    for dataset in study.datasets():
        for metric in study.metrics:
            table = study.table(dataset, metric).rename(columns=lambda s: f"x{s}").reset_index()
            out[f"tables/{metric}_{dataset}.json"] = table
        for kind, other in study.roles.baselines().items():
            frame = comparison(study, dataset, other)
            if not frame.empty:
                out[f"tables/liif_vs_{kind}_{dataset}.json"] = frame
        for variant in study.successors():
            frame = successor_comparison(study, dataset, variant)
            if not frame.empty:
                out[f"tables/{variant}_vs_liif_{dataset}.json"] = frame
        diffs = differences(study, dataset, list(study.roles.ablations()))
        if not diffs.empty:
            out[f"tables/ablations_{dataset}.json"] = diffs.reset_index()
    sized = size_varied(study)
    if not sized.empty:
        out["tables/size_varied.json"] = sized
    return out


def plot_data(study: Study, history: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Long tables (one row per variant and x) for ``dvc plots``, by path under ``reports/plots``: one folder per
    metric (``psnr/<dataset>.csv``, ``ssim/<dataset>.csv``), whose column is named after it."""
    out = {
        f"{m}/{d}.csv": study.table(d, m).stack().rename(m).reset_index()
        for m in study.metrics
        for d in study.datasets()
    }
    out["val_psnr.csv"] = history[["variant", "epoch", "val_psnr"]]
    return out


# ---------------------------------------------------------------- what was run


def data_sources(datasets: dict, prepared: PreparedData) -> pd.DataFrame:
    """Per dataset and split: its source, image count and the checksum of its manifest."""
    rows = []
    for name, spec in datasets.items():
        manifest = prepared.manifest(name)
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file() else "–"
        for split in ("train", "val", "test"):
            root = prepared.split(name, split)
            if root.is_dir():
                hr = root / "HR"
                count = len(list_images(hr)) if hr.is_dir() else len({p.name for p in root.rglob("*.png")})
                row = {"dataset": name, "source": spec["source"], "split": split, "images": count}
                rows.append({**row, "manifest sha256": digest})
    return pd.DataFrame(rows)


def validation_words(train: dict) -> str:
    """Where per-epoch validation and tuning read from, in words."""
    name = train.get("val_dataset") or train["dataset"]
    if train["val_split"] == "test":  # the paper's protocol: the first images of the test set
        return f"the first images of the `{name}` test split, as the paper validates (so they are not held out)"
    return f"the `{name}` {train['val_split']} split (held out of training and never tested)"


def timings(summaries: pd.DataFrame, eval_seconds: dict) -> pd.DataFrame:
    rows = [
        {"variant": s["variant"], "train (s)": s.get("train_seconds"), "evaluate (s)": eval_seconds.get(s["variant"])}
        for _, s in summaries.iterrows()
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- paper


RELEASED = "released weights, scored here"  # the paper page's column of the variants of role released


def paper_rows(study: Study, dataset: str) -> pd.DataFrame:
    """Ours beside the paper's, only where the paper has a row for the variant's role, encoder and our protocol.

    On DIV2K-protocol data a variant is set against its own T1/T3/T4 row; on a benchmark set only RDN
    variants are, against T2. Differences are taken from the LIIF with the same encoder. On data other than
    DIV2K only differences are shown. Released weights (role released) are no row of their own: their score is
    the ``RELEASED`` column of the row they stand for, beside the paper's number and ours for that row.
    """
    table, roles = study.table(dataset), study.roles
    t2 = benchmark_set(dataset)
    liif_of = roles.liif_by_encoder()
    released = {paper_row(roles.of[v]): v for v in roles.kind("released") if v in table.index}
    rows = []
    for variant in table.index:
        role = roles.of.get(variant)
        if role is None or study.is_replicate(variant) or role.kind == "released" or (t2 and not in_t2(role)):
            continue
        name, reference = paper_row(role), liif_of.get(role.encoder, roles.base)  # Bicubic: against the base
        ours_reference = study.base(dataset, reference) if reference in table.index else None
        theirs_name = paper_row(roles.of[reference]) if reference else None
        for s in study.scales(dataset):
            ours = study.base(dataset, variant)[s]
            theirs = paper_benchmark(dataset, name, s) if t2 else paper_div2k(name, s)
            theirs_reference = (
                (paper_benchmark(dataset, theirs_name, s) if t2 else paper_div2k(theirs_name, s))
                if theirs_name
                else None
            )
            if theirs is None or pd.isna(ours):
                continue
            row = {"variant": variant, "scale": f"x{s}", "ours": ours, "paper": theirs}
            if released:
                row[RELEASED] = table.loc[released[name], s] if name in released else np.nan
            if variant != reference and theirs_reference is not None and ours_reference is not None:
                row["ours minus LIIF"] = ours - ours_reference[s]
                row["paper minus LIIF"] = theirs - theirs_reference
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty and not dataset.startswith("div2k") and not t2:  # other data: absolute values not comparable
        frame = frame.drop(columns=["ours", "paper", RELEASED], errors="ignore")
        frame = frame.dropna(subset=["ours minus LIIF"]) if "ours minus LIIF" in frame else frame.iloc[0:0]
    return frame


def paper_table_name(dataset: str) -> str:
    t2 = benchmark_set(dataset)
    return f"T2 ({t2}, RDN encoder, Y-PSNR)" if t2 else "T1/T3/T4 (DIV2K validation, EDSR-baseline, RGB PSNR)"


def refuse_diverged(models_dir: Path, variants: list[str]):
    """A variant whose run diverged never yields a verdict: stop with one line naming it."""
    for variant in variants:
        record = diverged(models_dir / variant)
        if record:
            raise ReportError(
                f"{models_dir / variant}: the run diverged at epoch {record.get('epoch')} ({record.get('rule')}); "
                f"{record.get('remedy', 'change its recipe and rerun dvc repro train@' + variant)}"
            )


def load_study(metrics_dir: Path, roles: Roles) -> Study:
    variants = list(roles.of)
    scores = load_scores(metrics_dir, variants)
    check_replicates(scores, roles, metrics_dir)
    return Study(scores=scores, per_image=load_per_image(metrics_dir, variants), roles=roles)


def write_headline(study: Study, path: Path) -> dict:
    headline_metrics = headline(study)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(headline_metrics, indent=2) + "\n")
    return headline_metrics


def write_plot_data(study: Study, history: pd.DataFrame, plots: Path):
    """The ``dvc plots`` CSVs under ``plots``, stale per-dataset files (of every metric) removed first."""
    plots.mkdir(parents=True, exist_ok=True)
    for old in plots.glob("*/*.csv"):
        old.unlink()
    for name, frame in plot_data(study, history).items():
        (plots / name).parent.mkdir(parents=True, exist_ok=True)
        digits = METRICS.get(name.split("/")[0]).digits if "/" in name else 4
        frame.to_csv(plots / name, index=False, float_format=f"%.{digits}f")
