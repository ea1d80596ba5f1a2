"""The report: numbers loaded into pandas, verdicts that know the seed noise, pages per research question,
rows set against the paper only where encoder and protocol match."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import study_params

from liif.config.roles import study_roles
from liif.study.pages import Context, write_pages
from liif.study.paper import BENCHMARK, DIV2K, paper_benchmark, paper_row
from liif.study.report import (
    ReportError,
    Study,
    comparison,
    headline,
    load_curves,
    load_per_image,
    load_scores,
    load_study,
    paper_effect,
    paper_rows,
    plot_data,
    size_varied,
    size_varied_curves,
    successor_comparison,
    summary_word,
    tables,
    turning_points,
    verdict,
    with_spread,
)

METRICS = {  # PSNR of metrics/eval/<variant>.json, whose shape is {metric: {dataset: {x<scale>: mean}}}
    "liif": {"sample": {"x2": 30.00, "x4": 27.00, "x12": 24.00}},
    "liif-seed1": {"sample": {"x2": 30.10, "x4": 27.20, "x12": 24.10}},
    "liif-seed2": {"sample": {"x2": 29.90, "x4": 26.80, "x12": 23.90}},
    "bicubic": {"sample": {"x2": 29.50, "x4": 26.90, "x12": 23.00}},
    "metasr": {"sample": {"x2": 30.05, "x4": 27.30, "x12": 23.70}},
    "lte": {"sample": {"x2": 30.10, "x4": 27.50, "x12": 24.05}},
    "liif-c": {"sample": {"x2": 29.00, "x4": 26.98, "x12": 23.98}},
    "upsample-x2": {"sample": {"x2": 30.02, "x4": 25.00, "x12": 22.00}},
    "sized-liif-32-64": {"squares": {"32-64": 31.00}},
    "sized-upsample-32-64": {"squares": {"32-64": 30.50}},
}


def ssim_of(psnr: dict) -> dict:
    """An SSIM beside each PSNR that orders the variants as PSNR does."""
    return {d: {k: round(0.5 + v / 100, 5) for k, v in per.items()} for d, per in psnr.items()}


RDN = {"name": "rdn", "G0": 8, "kernel_size": 3, "n_blocks": 2, "n_convs": 2, "growth": 4}
PAPER_VARIANTS = {  # the paper profile's RDN and CelebA-HQ variants, beside the default study's EDSR-baseline ones
    "rdn-liif": {"role": "liif", "model": {"encoder": RDN}},
    "rdn-metasr": {"role": "metasr", "model": {"name": "metasr", "encoder": RDN}},
    "rdn-upsample-x3": {"role": "fixed-scale", "model": {"name": "fixed-scale", "scale": 3, "encoder": RDN}},
    "rdn-lte": {"role": "successor", "model": {"name": "lte", "encoder": RDN}},
    "celeba-liif-64-128": {
        "role": "size-varied",
        "train": {"dataset": "celeba", "task": [64, 128], "epochs": 200, "milestones": [100], "repeat": 1},
    },
}


def roles_of(names, *, paper: bool = False):
    """The declared roles of these variants of the small study (tests/conftest.py), and of the paper's RDN and
    CelebA-HQ variants among ``names`` when ``paper``."""
    params = study_params()
    if paper:
        params["data"]["datasets"]["celeba"] = {"source": "official", "catalogue": "celeba-hq"}
        params["variants"].update(PAPER_VARIANTS)
    return study_roles({**params, "variants": {name: params["variants"][name] for name in names}})


@pytest.fixture
def metrics_dir(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    for variant, values in METRICS.items():
        (folder / f"{variant}.json").write_text(json.dumps({"psnr": values, "ssim": ssim_of(values)}))
        rows = ["dataset\tscale\timage\tpsnr\tssim"]
        for dataset, per in values.items():
            for key, value in per.items():
                scale = key[1:] if key.startswith("x") else key
                rows += [
                    f"{dataset}\t{scale}\ta.png\t{value + 1:.4f}\t0.9",
                    f"{dataset}\t{scale}\tb.png\t{value - 1:.4f}\t0.8",
                ]
        (folder / f"{variant}.tsv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def study(metrics_dir):
    return Study(
        scores=load_scores(metrics_dir, list(METRICS)),
        per_image=load_per_image(metrics_dir, list(METRICS)),
        roles=roles_of(list(METRICS)),
    )


def test_verdict_is_within_noise_up_to_twice_the_seed_deviation():
    assert verdict(0.19, 0.1) == "within noise" and verdict(-0.2, 0.1) == "within noise"
    assert verdict(0.21, 0.1) == "better" and verdict(-0.21, 0.1) == "worse"
    assert verdict(0.01, float("nan")) == "no seed noise measured: not resolvable"
    assert verdict(0.5, 0.0) == "no seed noise measured: not resolvable"  # identical seeds measure nothing


def test_an_effect_the_paper_finds_smaller_than_the_runs_resolution_is_not_resolvable():
    assert verdict(0.1, 0.1, paper=0.2) == "not resolvable at this budget (paper: +0.20 dB; resolvable here: ±0.20 dB)"
    assert verdict(0.1, 0.1, paper=-0.21) == "within noise" and verdict(0.1, 0.1, paper=3.66) == "within noise"
    assert verdict(0.5, 0.1, paper=0.01) == "better"  # beyond noise is a finding, whatever the paper's effect
    assert verdict(0.5, float("nan"), paper=0.01) == "no seed noise measured: not resolvable"
    assert summary_word(pd.Series(["better", "not resolvable at this budget (paper: +0.1 dB)"])) == (
        "yes (not resolvable at this budget at 1 of 2 scales)"
    )
    assert summary_word(pd.Series(["not resolvable at this budget (x)"] * 2)) == "not resolvable at this budget"


def test_paper_effects_are_found_by_role_and_sign(study):
    assert paper_effect(study, "sample", "bicubic", 2) == pytest.approx(31.01 - 34.67)
    assert paper_effect(study, "sample", "liif-c", 4) == pytest.approx(28.97 - 29.00)
    assert paper_effect(study, "sample", "liif", 4) == 0
    assert paper_effect(study, "sample", "upsample-x2", 4) is None  # the paper cites it at x2 only
    assert paper_effect(study, "set5", "metasr", 2) is None  # T2 has RDN rows only


def test_noise_is_the_seed_to_seed_deviation_and_liif_is_the_mean_over_seeds(study):
    seeds = np.array([[30.0, 30.1, 29.9], [27.0, 27.2, 26.8]])
    assert study.noise("sample")[[2, 4]].tolist() == pytest.approx(seeds.std(axis=1, ddof=1).tolist())
    assert study.base("sample")[4] == pytest.approx(27.0)
    table = comparison(study, "sample", "bicubic")
    rows = table.set_index("scale")
    assert rows.loc["x2", "LIIF minus"] == pytest.approx(0.5) and rows.loc["x2", "LIIF is"] == "better"
    assert rows.loc["x4", "LIIF is"] == "within noise"  # +0.10 against 2 x 0.2
    assert rows.loc["x2", "2 x seed sd"] == pytest.approx(0.2)


def test_spread_table_folds_seed_replicates_into_liif(study):
    table = with_spread(study, "sample")
    assert "liif-seed1" not in table.index and table.index[0] == "liif"
    assert table.loc["liif", "x2"] == "30.00 ± 0.10 (3 seeds)"
    assert list(table.columns) == ["x2", "x4", "x12 (OOD)"]


def test_size_varied_rows_and_headline(study):
    t5 = size_varied(study)
    assert t5.iloc[0]["task L-H"] == "32-64" and t5.iloc[0]["LIIF minus up-sampling"] == pytest.approx(0.5)
    assert "sized-liif-32-64" not in study.table("sample").index  # tasks stay out of the scale tables
    head = headline(study)
    assert head["liif_x2"] == pytest.approx(30.0) and head["vs_bicubic_x12"] == pytest.approx(1.0)
    assert head["vs_metasr_x12"] == pytest.approx(0.3) and head["seed_sd_x2"] == pytest.approx(0.1)
    assert head["beats_bicubic_x2"] is True and head["beats_bicubic_x4"] is False  # +0.10 against 2 x 0.2
    assert head["beats_bicubic_every_scale"] is False


def test_paper_rows_only_where_encoder_and_protocol_match():
    scores = pd.DataFrame(
        [
            {"variant": v, "dataset": d, "scale": 2, "psnr": p}
            for v, d, p in [
                ("liif", "set5", 37.0),
                ("metasr", "set5", 36.9),
                ("rdn-liif", "set5", 37.5),
                ("rdn-metasr", "set5", 37.4),
                ("liif", "div2k-valid", 34.0),
                ("metasr", "div2k-valid", 33.9),
                ("rdn-liif", "div2k-valid", 34.5),
                ("liif", "sample", 30.0),
                ("metasr", "sample", 30.2),
            ]
        ]
    )
    roles = roles_of(["liif", "metasr", "rdn-liif", "rdn-metasr"], paper=True)
    study = Study(scores=scores, per_image=pd.DataFrame(), roles=roles)
    t2 = paper_rows(study, "set5").set_index("variant")
    assert sorted(t2.index) == ["rdn-liif", "rdn-metasr"]  # T2 has RDN rows only: EDSR variants are left out
    assert t2.loc["rdn-liif", "paper"] == BENCHMARK["Set5"]["rdn-liif"][0]
    assert t2.loc["rdn-metasr", "ours minus LIIF"] == pytest.approx(-0.1)  # from the RDN LIIF, not the EDSR one
    div2k = paper_rows(study, "div2k-valid").set_index("variant")
    assert div2k.loc["metasr", "paper"] == DIV2K["metasr"][0] and div2k.loc["liif", "ours"] == 34.0
    assert div2k.loc["rdn-liif", "paper"] == DIV2K["rdn-liif"][0]
    sample = paper_rows(study, "sample")
    assert "ours" not in sample.columns and list(sample["variant"]) == ["metasr"]  # other data: differences only
    assert sample.iloc[0]["ours minus LIIF"] == pytest.approx(0.2)
    edsr_only = roles_of(["liif", "metasr"], paper=True)
    assert paper_rows(Study(scores=scores, per_image=pd.DataFrame(), roles=edsr_only), "set5").empty


def test_verdicts_without_replicates_say_so(metrics_dir, tmp_path):
    study = Study(
        scores=load_scores(metrics_dir, ["liif", "bicubic", "liif-c"]),
        per_image=load_per_image(metrics_dir, ["liif", "bicubic", "liif-c"]),
        roles=roles_of(["liif", "bicubic", "liif-c"]),
    )
    assert comparison(study, "sample", "bicubic", []).empty  # no scales asked: none compared
    ctx = Context(profile="p", encoder="edsr-baseline", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    pages = write_pages(tmp_path, study, ctx, pd.DataFrame())
    assert "**sample: no seed noise measured: not resolvable (x2 +0.50, x4 +0.10 dB vs Bicubic)" in (
        pages["README"].read_text()
    )
    assert "cell decoding: no seed noise measured: not resolvable in-distribution" in pages["rq4"].read_text()
    assert "no seed replicates" in pages["README"].read_text()
    one_scale = Study(scores=study.scores[study.scores["scale"] == 2], per_image=pd.DataFrame(), roles=study.roles)
    assert one_scale.table("sample").shape[1] == 1 and len(with_spread(one_scale, "sample")) == 3
    no_liif = study.scores[study.scores["variant"] != "liif"]
    assert headline(Study(scores=no_liif, per_image=pd.DataFrame(), roles=study.roles)) == {}


def test_paper_rows_come_from_roles_and_encoders_not_names():
    roles = roles_of(list(ROLE_NAMES), paper=True)
    rows = {variant: paper_row(role) for variant, role in roles.of.items()}
    assert rows == ROLE_NAMES
    assert paper_benchmark("set5", rows["rdn-liif"], 6) == BENCHMARK["Set5"]["rdn-liif"][3]
    assert paper_benchmark("set14", rows["rdn-upsample-x3"], 3) == BENCHMARK["Set14"]["rdn"][1]
    assert paper_benchmark("set14", rows["rdn-upsample-x3"], 2) is None
    assert paper_benchmark("set5", rows["bicubic"], 2) is None


ROLE_NAMES = {  # paper variant -> its paper row; the names happen to agree, the lookup never reads them
    "liif": "liif",
    "liif-c": "liif-c",
    "liif-d": "liif-d",
    "liif-x3": "liif-x3",
    "metasr": "metasr",
    "upsample-x4": "upsample-x4",
    "bicubic": "bicubic",
    "rdn-liif": "rdn-liif",
    "rdn-metasr": "rdn-metasr",
    "rdn-upsample-x3": "rdn-upsample-x3",
    "lte": "lte",
    "rdn-lte": "rdn-lte",
    "celeba-liif-64-128": None,
}


def test_pages_answer_each_question_from_the_numbers(study, tmp_path):
    ctx = Context(
        profile="test",
        encoder="edsr-baseline",
        revision="abc",
        sources=pd.DataFrame([{"dataset": "s"}]),
        timings=pd.DataFrame([{"variant": "liif", "train (s)": 1.0}]),
        variants={"liif": {}},
    )
    pages = write_pages(tmp_path, study, ctx, pd.DataFrame())
    assert set(pages) == {"rq1", "rq2", "rq3", "rq4", "rq5", "paper", "README"}
    readme = pages["README"].read_text()
    for key in ("rq1", "rq2", "rq3", "rq4", "rq5", "paper"):
        assert f"]({key}.md)" in readme
    # x2 +0.50 better, x4 +0.10 within noise (2 sd = 0.40): in-distribution is mixed, not "yes"
    assert "**sample: mixed (x2 +0.50 ± 0.20, x4 +0.10 ± 0.40 dB vs Bicubic)**" in readme
    rq2 = pages["rq2"].read_text()
    assert "sample vs bicubic out of distribution: yes (x12 +1.00 ± 0.20)" in rq2
    # the paper's LIIF leads MetaSR by 0.16 dB at x12, inside this run's ±0.20, but this run's +0.30 is beyond it
    assert "sample vs metasr out of distribution: yes (x12 +0.30 ± 0.20)" in rq2
    rq4 = pages["rq4"].read_text()
    # x2: a real difference; x4: within noise where the paper's +0.03 is below the ±0.40 resolution
    assert "cell decoding: within noise or mixed in-distribution (x2 +1.00, x4 +0.02)" in rq4
    assert "| liif-c (no cell decoding) | -1.00 (worse) | -0.02 (not resolvable at this budget (paper: -0.03 dB" in (
        rq4.replace("  ", " ")
    )
    assert "32-64 +0.50 dB (no seed noise measured: not resolvable)" in pages["rq3"].read_text()  # no sized seeds
    assert "vs upsample-x2 at x2: -0.02 dB (not resolvable at this budget (paper: +0.12 dB;" in pages["rq5"].read_text()
    assert "| not resolvable at this budget (paper: +0.16 dB; resolvable here: ±0.20 dB) |" not in rq2
    assert "LIIF scores above Bicubic on 4 of 4 (test image, scale) pairs" in pages["rq1"].read_text()


def test_the_overview_says_which_comparisons_the_run_can_test(study, tmp_path):
    ctx = Context(profile="p", encoder="edsr-baseline", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    readme = write_pages(tmp_path, study, ctx, pd.DataFrame())["README"].read_text()
    assert "## What this run can resolve on `sample`" in readme
    assert "twice the seed sd of the base model): x2 ±0.20, x4 ±0.40, x12 ±0.20 dB" in readme
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in readme.splitlines() if "| x2 " in line}
    assert rows["bicubic"] == "x2, x4, x12"  # the paper: +3.66 / +2.34 / +1.44
    assert rows["liif-c"] == "none: needs the paper profile"  # the paper: +0.14 / +0.03 / -0.01
    assert rows["metasr"] == "none: needs the paper profile"  # +0.03 / +0.08 / +0.16


def test_a_caveat_opens_every_page(study, tmp_path):
    ctx = Context(
        profile="p", encoder="e", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame(), caveat="Too short."
    )
    for path in write_pages(tmp_path, study, ctx, pd.DataFrame()).values():
        lines = path.read_text().splitlines()
        assert lines[0].startswith("# ") and lines[2] == "> **Too short.**", path.name


def _metrics(folder: Path, values: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for variant, per in values.items():
        (folder / f"{variant}.json").write_text(json.dumps({"psnr": per}))
    return folder


def test_seeds_that_scored_the_same_measure_no_noise(tmp_path):
    """A zero spread is no noise estimate: no verdict, no "± 0.00", no seed_sd or beats_bicubic in the headline."""
    same = {"sample": {"x2": 30.0, "x4": 27.0}}
    folder = _metrics(
        tmp_path / "m",
        {"liif": same, "liif-seed1": {"sample": {"x2": 30.0, "x4": 27.2}}, "bicubic": {"sample": {"x2": 29, "x4": 26}}},
    )
    study = load_study(folder, roles_of(["liif", "liif-seed1", "bicubic"]))
    assert np.isnan(study.noise("sample")[2]) and study.noise("sample")[4] == pytest.approx(np.std([27, 27.2], ddof=1))
    rows = comparison(study, "sample", "bicubic").set_index("scale")
    assert rows.loc["x2", "LIIF is"] == "no seed noise measured: not resolvable"
    assert with_spread(study, "sample").loc["liif", "x2"] == "30.00 (2 seeds, no seed noise measured)"
    head = headline(study)
    assert "seed_sd_x2" not in head and "beats_bicubic_x2" not in head and "beats_bicubic_every_scale" not in head
    assert summary_word(rows["LIIF is"]) == "yes (no seed noise measured at 1 of 2 scales)"


def test_a_replicate_file_identical_to_its_base_is_refused(tmp_path):
    same = {"sample": {"x2": 30.0, "x4": 27.0}}
    folder = _metrics(tmp_path / "m", {"liif": same, "liif-seed1": same, "bicubic": same})
    with pytest.raises(ReportError) as caught:
        load_study(folder, roles_of(["liif", "liif-seed1", "bicubic"]))
    message = str(caught.value)
    assert message.startswith(f"{folder / 'liif-seed1.json'}: the same PSNR as {folder / 'liif.json'} at every scale")
    assert "no seed noise is measured" in message and "\n" not in message


@pytest.mark.parametrize(
    "seed1, message",
    [
        ({"sample": {"x2": 30.1, "x4": 27.1, "x6": 40.0}}, "liif-seed1.json: sample x6 is not in {m}/liif.json"),
        ({"sample": {"x2": 30.1}}, "liif.json: sample x4 is not in {m}/liif-seed1.json"),
        ({"other": {"x2": 30.1, "x4": 27.1}, "sample": {"x2": 30.1, "x4": 27.1}}, "seed1.json: other x2 is not in"),
    ],
)
def test_every_seed_must_cover_the_same_scales(tmp_path, seed1, message):
    """An extra scale in one seed's file would give "40.00 ± nan (2 seeds)" and a one-seed headline value."""
    folder = _metrics(tmp_path / "m", {"liif": {"sample": {"x2": 30.0, "x4": 27.0}}, "liif-seed1": seed1})
    with pytest.raises(ReportError) as caught:
        load_study(folder, roles_of(["liif", "liif-seed1"]))
    assert message.format(m=folder) in str(caught.value) and "\n" not in str(caught.value)
    assert "rerun dvc repro -f evaluate@liif evaluate@liif-seed1" in str(caught.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"psnr": {"sample": {"xfoo": 30.0}}}', "psnr sample key 'xfoo' is neither a scale x<n> (x2, x12) nor a task"),
        ('{"psnr": {"sample": {"x2.5": 30.0}}}', "psnr sample key 'x2.5' is neither a scale"),
        ('{"psnr": {"sample": {"x2": 30.0, "x02": 30.1}}}', "psnr sample key 'x02' is neither a scale"),
        ('{"psnr": {"sample": {"x0": 30.0}}}', "psnr sample key 'x0' is neither a scale"),
        ('{"psnr": {"sample": {"x2": 30.0, "x2": 31.0}}}', "key 'x2' appears twice"),
        ('{"psnr": {"sample": 30.0}}', "psnr sample is 30.0, not a mapping of x<scale> to psnr"),
        ('{"psnr": [30.0]}', "psnr is [30.0], not a mapping of dataset to scales"),
        ("[30.0]", "expected {metric: {dataset: {x<scale>: mean}}}, found [30.0]"),
        ('{"psnr": {"sample": {"x2": "30"}}}', "psnr sample x2 is '30', not a finite psnr"),
        ('{"psnr": {"sample": {"x2": 30.0}}, "ssim": {"sample": {"x2": NaN}}}', "ssim sample x2 is nan, not a finite"),
        ('{"sample": {"x2": 30.0}}', "'sample' is not a metric of liif/metrics (psnr, ssim"),
        ('{"ssim": {"sample": {"x2": 0.9}}}', "no psnr, the paper's metric every verdict is on"),
        (
            '{"psnr": {"sample": {"x2": 30.0, "x4": 27.0}}, "ssim": {"sample": {"x2": 0.9}}}',
            "sample x4 is in one of psnr and ssim, not both",
        ),
    ],
)
def test_a_bad_metrics_key_names_the_file_and_key(tmp_path, text, message):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "liif.json").write_text(text)
    with pytest.raises(ReportError) as caught:
        load_scores(folder, ["liif"])
    line = str(caught.value)
    assert line.startswith(f"{folder / 'liif.json'}: ") and message in line and "\n" not in line
    assert line.endswith("rerun dvc repro -f evaluate@liif")


def test_tasks_and_scales_are_read_apart(tmp_path):
    folder = _metrics(tmp_path / "m", {"sized": {"squares": {"32-64": 31.0}}, "liif": {"sample": {"x12": 24.0}}})
    scores = load_scores(folder, ["sized", "liif"])
    assert scores["scale"].tolist() == ["32-64", 12]


def test_other_metrics_are_shown_beside_psnr_and_never_judged(study, tmp_path):
    """SSIM gets its own table under each PSNR table, MLflow table, dvc plots data and headline keys; every
    verdict stays on PSNR even where SSIM says the opposite."""
    assert study.metrics == ["psnr", "ssim"]
    assert with_spread(study, "sample", "ssim").loc["liif", "x2"] == "0.8000 ± 0.0010 (3 seeds)"
    flipped = study.scores.assign(ssim=1 - study.scores["ssim"])  # SSIM ranks Bicubic first everywhere
    rows = comparison(Study(flipped, study.per_image, study.roles), "sample", "bicubic").set_index("scale")
    assert rows.loc["x2", "LIIF minus"] == pytest.approx(0.5) and rows.loc["x2", "LIIF is"] == "better"
    ctx = Context(profile="p", encoder="e", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    readme = write_pages(tmp_path, study, ctx, pd.DataFrame())["README"].read_text()
    psnr_at, ssim_at = readme.index("## PSNR on the `sample` test set (dB)"), readme.index("## SSIM on the `sample`")
    assert psnr_at < ssim_at and "| liif " in readme[ssim_at:] and "0.8000 ± 0.0010 (3 seeds)" in readme[ssim_at:]
    assert tables(study)["tables/ssim_sample.json"].set_index("variant").loc["bicubic", "x4"] == pytest.approx(0.769)
    plots = plot_data(study, pd.DataFrame(columns=["variant", "epoch", "val_psnr"]))
    assert list(plots["ssim/sample.csv"].columns) == ["variant", "scale", "ssim"] and "psnr/sample.csv" in plots
    head = headline(study)
    assert head["liif_ssim_x4"] == pytest.approx(0.77) and head["liif_x4"] == pytest.approx(27.0)
    assert list(head)[:4] == ["beats_bicubic_x2", "liif_ssim_x2", "liif_x2", "seed_sd_x2"]


def test_a_successor_is_set_against_liif_with_liifs_noise_and_its_published_difference(study, tmp_path):
    """LTE minus LIIF (the mean over LIIF's seeds), LIIF's seed noise, and LTE's published T1 difference."""
    table = successor_comparison(study, "sample", "lte").set_index("scale")
    assert list(table.columns) == [
        "LIIF",
        "LTE",
        "LTE minus LIIF",
        "2 x seed sd",
        "published LTE minus LIIF",
        "LTE is",
    ]
    assert table["LTE minus LIIF"].tolist() == pytest.approx([0.10, 0.50, 0.05])
    assert table["2 x seed sd"].tolist() == pytest.approx([0.20, 0.40, 0.20])
    published = [DIV2K["lte"][i] - DIV2K["liif"][i] for i in (0, 2, 4)]  # x2, x4, x12
    assert table["published LTE minus LIIF"].tolist() == pytest.approx(published)
    assert table.loc["x4", "LTE is"] == "better"  # +0.50 beyond 2 sd
    assert table.loc["x2", "LTE is"].startswith("not resolvable at this budget (paper: +0.05 dB")
    ctx = Context(profile="p", encoder="edsr-baseline", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    pages = write_pages(tmp_path, study, ctx, pd.DataFrame())
    rq5 = pages["rq5"].read_text()
    assert "LTE (lte) minus LIIF in-distribution: yes (not resolvable at this budget at 1 of 2 scales) (x2 +0.10" in rq5
    assert "LTE (lte) minus LIIF out of distribution: not resolvable at this budget (x12 +0.05 ± 0.20)" in rq5
    assert "beyond x4, LTE decodes every output pixel with the cell of an x4 query" in rq5  # where its rule applies
    paper = [[c.strip() for c in line.split("|")[1:-1]] for line in pages["paper"].read_text().splitlines()]
    assert ["lte", "x2", "0.10", "0.05"] in paper  # ours and LTE's published, each minus LIIF
    assert "unverified against LTE's paper" in pages["paper"].read_text()
    assert "tables/lte_vs_liif_sample.json" in tables(study)


def test_a_successor_of_another_encoder_is_set_against_that_encoders_liif():
    scores = pd.DataFrame(
        [
            {"variant": v, "dataset": "set5", "scale": s, "psnr": p}
            for v, s, p in [("liif", 2, 37.0), ("rdn-liif", 2, 37.5), ("rdn-lte", 2, 37.8), ("rdn-lte", 6, 30.0)]
        ]
    )
    roles = roles_of(["liif", "rdn-liif", "rdn-lte"], paper=True)
    study = Study(scores=scores, per_image=pd.DataFrame(), roles=roles)
    table = successor_comparison(study, "set5", "rdn-lte")
    assert table["LTE minus LIIF"].tolist() == pytest.approx([0.3])  # rdn-liif has no x6: that scale is left out
    assert table["published LTE minus LIIF"].tolist() == pytest.approx([38.23 - 38.17])  # T2, Set5 x2
    assert table["LTE is"].tolist() == ["no seed noise measured: not resolvable"]


def test_rq3_shows_where_a_longer_training_turns_the_size_varied_comparison(study, tmp_path):
    """The learning-curve study's snapshots of the size-varied pair, found by role: the end of each recipe and the
    first snapshot from which LIIF stays ahead of the up-sampler."""
    rows = []
    for recipe, liif, up in (("r-2x", [30.0, 31.0, 32.5], [31.0, 31.5, 32.0]), ("r-1x", [30.0, 30.5], [31.0, 31.0])):
        for i, (a, b) in enumerate(zip(liif, up, strict=True)):
            rows += [
                {"recipe": recipe, "variant": "sized-liif-32-64", "epoch": 10 * (i + 1), "task": a},
                {"recipe": recipe, "variant": "sized-upsample-32-64", "epoch": 10 * (i + 1), "task": b},
                {"recipe": recipe, "variant": "liif", "epoch": 10 * (i + 1), "task": 99.0},  # not a size-varied pair
            ]
    curves = size_varied_curves(pd.DataFrame(rows), study.roles)
    assert set(curves["recipe"]) == {"r-2x", "r-1x"} and len(curves) == 5
    turns = turning_points(curves).set_index("recipe")
    assert turns.loc["r-2x", "LIIF above from epoch"] == 30 and turns.loc["r-1x", "LIIF above from epoch"] == "never"
    assert turns.loc["r-2x", "LIIF minus up-sampling at the end"] == pytest.approx(0.5)
    ctx = Context(
        profile="p",
        encoder="edsr-baseline",
        revision="r",
        sources=pd.DataFrame(),
        timings=pd.DataFrame(),
        curves=curves,
        curves_source="experiments/learning-curves/full-run/curves.csv",
        figures={"rq3_curves.png": "the curves"},
    )
    rq3 = write_pages(tmp_path, study, ctx, pd.DataFrame())["rq3"].read_text()
    assert "32-64 over 20 epochs (r-1x): -0.50 dB at the end, never above to the end" in rq3
    assert "32-64 over 30 epochs (r-2x): +0.50 dB at the end, above from epoch 30 on" in rq3
    assert "no seed noise is measured there" in rq3  # one training per point: no verdict
    assert "](figures/rq3_curves.png)" in rq3 and "experiments/learning-curves/full-run/curves.csv" in rq3
    assert turning_points(size_varied_curves(pd.DataFrame(rows[2::3]), study.roles)).empty  # no pair: no section


@pytest.mark.parametrize(
    "text, message",
    [
        ("recipe,variant,epoch\nr,liif,1\n", "lacks the column(s) task"),
        ("", "not a readable CSV table (EmptyDataError)"),
    ],
)
def test_a_broken_curves_table_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "curves.csv"
    path.write_text(text)
    with pytest.raises(ReportError, match=re.escape(message)):
        load_curves(path)
    with pytest.raises(ReportError, match="not a readable CSV"):
        load_curves(tmp_path / "missing.csv")


def test_a_successor_without_a_liif_of_its_encoder_is_left_out_and_published_gaps_are_computed(study, tmp_path):
    params = study_params()
    rdn = {"name": "rdn", "G0": 8, "kernel_size": 3, "n_blocks": 2, "n_convs": 2, "growth": 4}
    params["variants"]["rdn-lte"] = {"role": "successor", "model": {"name": "lte", "encoder": rdn}}
    roles = study_roles(params)
    assert Study(scores=study.scores, per_image=pd.DataFrame(), roles=roles).successors() == {"lte": "liif"}
    ctx = Context(profile="p", encoder="edsr-baseline", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    rq5 = write_pages(tmp_path, study, ctx, pd.DataFrame())["rq5"].read_text()
    gaps = [a - b for a, b in zip(DIV2K["lte"], DIV2K["liif"], strict=True)]
    assert f"LTE (lte) reports {min(gaps):+.2f} to {max(gaps):+.2f} dB over LIIF on DIV2K (T1)." in rq5
