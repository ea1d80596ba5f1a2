"""benchmarks/gpu_check.sh without a GPU: its CPU subset prints one table with every row, the CUDA rows "no GPU"."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from integration.test_cuda import MODELS, RENDERED

ROOT = Path(__file__).resolve().parents[2]


CUDA_TESTS = [
    *(f"cuda test: test_model_on_cuda_equals_cpu[{name}]" for name in MODELS),
    *(f"cuda test: test_renderer_on_cuda_equals_cpu[{name}]" for name in RENDERED),
    "cuda test: test_mixed_precision_training_step[bf16]",
    "cuda test: test_mixed_precision_training_step[fp16]",
    "cuda test: test_compiled_training_step_matches_eager",
    "cuda test: test_pinned_worker_batches_equal_inline_batches",
    "cuda test: test_ddp_over_nccl_trains_the_weights_of_one_process",
]


MEASURED = [  # run on the CPU too, with a smaller model and fewer steps
    "train fp32, synthetic (steps/s)",
    "train fp32, real data (steps/s)",
    "train bf16, synthetic (steps/s)",
    "train bf16, real data (steps/s)",
    "decode 64->256 (px/s)",
    "decode 48->480 (px/s)",
]


CUDA_ONLY = ["train compiled, synthetic (steps/s)", "train compiled, real data (steps/s)"]


REPRO = "liif repro --jobs auto (tiny profile)"


HEADER = "| name | result | detail |"


def parse_table(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    assert lines.count(HEADER) == 1, stdout
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        assert len(cells) == 3, line
        rows.append(dict(zip(("name", "result", "detail"), cells)))
    assert not any(line.startswith("|") for line in lines[start + len(rows) :]), "more than one table"
    return rows


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, run bash benchmarks/gpu_check.sh itself")
def test_the_cpu_subset_prints_every_row(tmp_path):
    logs = tmp_path / "logs"
    env = {**os.environ, "GPU_CHECK_LOGS": str(logs), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True, env=env, timeout=150
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = parse_table(proc.stdout)
    assert [r["name"] for r in rows] == ["device", *CUDA_TESTS, *MEASURED[:4], *CUDA_ONLY, *MEASURED[4:], REPRO]
    result = {r["name"]: r for r in rows}
    assert result["device"]["result"] == "cpu"
    for name in [*CUDA_TESTS, *CUDA_ONLY, REPRO]:
        assert result[name]["result"] == "no GPU", result[name]
    for name in MEASURED:
        assert float(result[name]["result"].replace(",", "")) > 0, result[name]
        assert "CPU subset" in result[name]["detail"], result[name]
    assert json.loads((logs / "gpu-check.json").read_text())["rows"] == rows
    assert (logs / "cuda-tests.xml").is_file() and (logs / "pytest.log").is_file()
