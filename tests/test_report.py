"""The report: benchmark sets compared with T2, DIV2K-like data with T1/T3/T4, task variants only in T5."""

import json

import pytest

from liif.paper import BENCHMARK, DIV2K, paper_benchmark
from liif.report import build_report, delta_table, psnr_table

METRICS = {  # the shape of metrics/eval/<variant>.json
    "liif": {"set5": {"x2": 33.10, "x4": 28.90, "x6": 26.00}, "sample": {"x2": 30.11, "x6": 25.99}},
    "bicubic": {"set5": {"x2": 33.67, "x4": 28.43, "x6": 25.93}, "sample": {"x2": 30.89, "x6": 26.38}},
    "metasr": {"set5": {"x2": 33.20, "x4": 28.80, "x6": 25.90}, "sample": {"x2": 31.49, "x6": 26.10}},
    "upsample-x2": {"set5": {"x2": 33.30, "x4": 27.00, "x6": 25.00}, "sample": {"x2": 31.87, "x6": 25.00}},
    "liif-c": {"set5": {"x2": 33.00, "x4": 28.95, "x6": 26.05}, "sample": {"x2": 29.77, "x6": 26.00}},
    "celeba-liif-64-128": {"celeba": {"64-128": 32.20}},
    "celeba-upsample-64-128": {"celeba": {"64-128": 32.71}},
}


def test_paper_benchmark_maps_our_variants_to_t2_rows():
    assert paper_benchmark("set5", "liif", 6) == BENCHMARK["Set5"]["rdn-liif"][3]
    assert paper_benchmark("B100", "metasr", 8) == BENCHMARK["B100"]["rdn-metasr"][4]
    assert paper_benchmark("set14", "upsample-x3", 3) == BENCHMARK["Set14"]["rdn"][1]
    assert paper_benchmark("set14", "upsample-x3", 2) is None  # a per-scale model has one column
    assert paper_benchmark("set5", "bicubic", 2) is None  # T2 has no Bicubic row
    assert paper_benchmark("sample", "liif", 2) is None and paper_benchmark("set5", "liif", 12) is None


def test_benchmark_deltas_use_t2_and_div2k_deltas_use_t1():
    t2 = delta_table(METRICS, "set5", ["bicubic", "metasr", "upsample-x2"])
    metasr = next(line for line in t2.splitlines() if line.startswith("| metasr"))
    paper_x6 = BENCHMARK["Set5"]["rdn-metasr"][3] - BENCHMARK["Set5"]["rdn-liif"][3]  # -0.11
    assert f"-0.10 / {paper_x6:+.2f}" in metasr and "+0.10 / " in metasr
    t1 = delta_table(METRICS, "sample", ["metasr"])
    assert f"+1.38 / {DIV2K['metasr'][0] - DIV2K['liif'][0]:+.2f}" in t1
    assert delta_table(METRICS, "sample", ["liif-x2", "liif-x3"]) is None  # no such variants: no table


def test_task_variants_stay_out_of_the_scale_tables():
    table = psnr_table(METRICS, "set5")
    assert "celeba" not in table and "| bicubic | **33.67** |" in table


@pytest.fixture
def report(tmp_path):
    (tmp_path / "metrics").mkdir()
    for variant, values in METRICS.items():
        (tmp_path / "metrics" / f"{variant}.json").write_text(json.dumps(values))
    path = build_report(metrics_dir=tmp_path / "metrics", models_dir=tmp_path / "models", out_dir=tmp_path / "out",
                        title="t", notes=[], variants=list(METRICS))  # fmt: skip
    return path.read_text()


def test_report_sections_follow_the_data(report):
    set5 = report[report.index("PSNR on `set5`") : report.index("## T5")]
    sample = report[report.index("PSNR on `sample`") : report.index("PSNR on `set5`")]
    assert "### T2" in set5 and "Set5 (T2" in set5 and "T1" not in set5
    assert "### T1" in sample and "### T3" in sample and "### T4" not in sample and "T2" not in sample
    assert "paper, T2: yes, by 0.08-0.21 dB" in set5
    assert "| 64-128 | 32.71 | 32.20 | -0.51 | 34.78 / 35.96 / +1.18 |" in report
