"""Extending the study touches one new module plus params.yaml: a toy component of each concept (a model, a
metric, a dataset source), written into a temporary copy of the repository, trained and scored by the real
pipeline, as docs/extending.md walks through. The copy's stages import the copy's ``liif`` (PYTHONPATH), where
the new module is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_dvc, sh, study_copy
from PIL import Image

from liif.config.params import dump_yaml, read_yaml

pytestmark = [pytest.mark.integration, needs_dvc]


TOY_MODEL = '''\
"""A toy model: one convolution, read at the LR pixel holding each query (docs/extending.md)."""

import torch
from torch import nn

from liif.models import MODELS, LatentGrid, SRModel, nearest_index
from liif.types import Width


@MODELS.register("toy")
class Toy(SRModel):
    """Features of a 3x3 convolution at the LR pixel holding each query, mapped to RGB by a linear layer."""

    def __init__(self, *, width: Width = 8):
        super().__init__()
        self.config = dict(width=width)  # what its checkpoints rebuild it from
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(width, 3)
        self.receptive_radius = 2  # LR pixels a prediction depends on (the renderer's tile margin)

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        return grid

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = grid.size
        rows, cols = nearest_index(coord[..., 0], h), nearest_index(coord[..., 1], w)
        return self.out(grid.gather(rows, cols))
'''


TOY_VARIANT = "  toy: {role: other, model: {name: toy, width: 4}}\n"


def _add_variant(params: str, line: str) -> str:
    """params.yaml with one more line at the end of its variants section."""
    head, tail = params.split("\nvariants:\n", 1)
    body, sep, rest = tail.partition("\nreport:")
    return f"{head}\nvariants:\n{body.rstrip()}\n{line}{sep}{rest}"


def test_a_new_model_is_one_module_and_a_variant(tmp_path, monkeypatch):
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    monkeypatch.setenv("PYTHONPATH", str(repo))  # the copy's liif, not the installed checkout's
    (repo / "liif/models/toy.py").write_text(TOY_MODEL)
    params = repo / "params.yaml"
    params.write_text(_add_variant(params.read_text(), TOY_VARIANT))
    sh("dvc", "repro", "evaluate@toy", cwd=repo)
    config = json.loads((repo / "configs/toy.json").read_text())
    assert config["model"] == {"name": "toy", "args": {"width": 4}}
    assert config["train"]["patches"] == "downsampled"
    assert (repo / "models/toy/epoch-last.pth").is_file()
    scores = json.loads((repo / "metrics/eval/toy.json").read_text())["psnr"]["sample"]
    assert set(scores) == {"x2", "x5"} and all(value > 0 for value in scores.values())
    changed = sh("git", "status", "--porcelain", "--", "liif", "stages", "dvc.yaml", "tests", "params.yaml", cwd=repo)
    assert sorted(changed.split()) == ["??", "M", "liif/models/toy.py", "params.yaml"]


TOY_METRIC = '''"""Mean absolute error on the protocol's crop: a toy metric, the whole of what a new metric needs."""

from liif.metrics import metric
from liif.protocol import shave_for


@metric("mae", higher_is_better=False, digits=5, shown=4)
def mae(pred, target, *, protocol="none", scale=1, grey=False) -> float:
    diff = (pred.double() - target.double()).abs()
    shave = shave_for(protocol, scale)
    return (diff[..., shave:-shave, shave:-shave] if shave else diff).mean().item()
'''


def test_a_new_metric_is_one_module_and_one_params_line(tmp_path, monkeypatch):
    """docs/extending.md, a new metric: liif/metrics/mae.py and `mae` in eval.metrics; dvc repro of one
    evaluate stage writes its means beside PSNR's and its TSV column, and the report's loader reads them."""
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    monkeypatch.setenv("PYTHONPATH", str(repo))  # the copy's liif/, not the editable install's checkout
    (repo / "liif" / "metrics" / "mae.py").write_text(TOY_METRIC)
    params = (repo / "params.yaml").read_text()
    assert params.count("  metrics: [psnr, ssim]") == 1
    (repo / "params.yaml").write_text(params.replace("  metrics: [psnr, ssim]", "  metrics: [psnr, ssim, mae]"))
    touched = sh("git", "status", "--porcelain", "--", "liif", "stages", "dvc.yaml", "tests", "params.yaml", cwd=repo)
    assert sorted(touched.splitlines()) == [" M params.yaml", "?? liif/metrics/mae.py"]

    sh("dvc", "repro", "evaluate@bicubic", cwd=repo)
    means = json.loads((repo / "metrics" / "eval" / "bicubic.json").read_text())
    assert list(means) == ["psnr", "ssim", "mae"] and set(means["mae"]["sample"]) == {"x2", "x5"}
    assert 0 < means["mae"]["sample"]["x2"] < means["mae"]["sample"]["x5"] < 0.5  # a larger scale errs more
    header, *rows = (repo / "metrics" / "eval" / "bicubic.tsv").read_text().splitlines()
    assert header.split("\t") == ["dataset", "scale", "image", "psnr", "ssim", "mae"] and len(rows) == 2
    shown = sh("dvc", "metrics", "show", "--json", cwd=repo)
    assert '"mae"' in shown
    read = "from pathlib import Path; from liif.study.report import load_scores; "
    read += "print(load_scores(Path('metrics/eval'), ['bicubic']).to_json(orient='records'))"
    [x2, x5] = json.loads(sh(sys.executable, "-c", read, cwd=repo))
    assert (x2["scale"], x2["mae"], x5["psnr"]) == (2, means["mae"]["sample"]["x2"], means["psnr"]["sample"]["x5"])


TOY_SOURCE = '''"""Source ``listed``: photographs copied from a folder that params.yaml names, listed per split."""

import shutil
from dataclasses import dataclass
from pathlib import Path

from liif.sources import SOURCES
from liif.sources.base import Photographs, Plan, Source


@SOURCES.register("listed")
@dataclass(frozen=True, kw_only=True)
class Listed(Source):
    path: str  # the folder holding the photographs
    train: list[str]  # file names of the training photographs
    val: list[str]
    test: list[str]

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        raw.mkdir(parents=True, exist_ok=True)
        for name in self.train + self.val + self.test:
            shutil.copy(Path(self.path) / name, raw / name)
        return raw

    def plan(self, dataset: str, *, raw: Path) -> Plan:
        splits = {"train": self.train, "val": self.val, "test": self.test}
        return Plan(tuple(Photographs(split, tuple(raw / n for n in names)) for split, names in splits.items()))
'''


def test_a_new_dataset_source_is_one_module(tmp_path):
    """A source that copies photographs from a folder: one new module plus the params.yaml lines that use it
    for a dataset that a variant trains and is scored on."""
    photos = tmp_path / "photos"
    photos.mkdir()
    names = [f"p{i}.png" for i in range(5)]
    rows, cols = np.mgrid[0:200, 0:200]
    for i, name in enumerate(names):  # smooth photographs of 200 x 200 px: a 48 px patch at x4 needs 192
        rgb = np.stack([(rows * (i + 1)) % 256, (cols * 2 + i * 40) % 256, (rows + cols) // 2], axis=-1)
        Image.fromarray(rgb.astype(np.uint8)).save(photos / name)
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    (repo / "liif/sources/listed.py").write_text(TOY_SOURCE)
    params = read_yaml(repo / "params.yaml")
    params["data"]["datasets"]["photos"] = {
        "source": "listed",
        "path": str(photos),
        "train": names[:3],
        "val": names[3:4],
        "test": names[4:],
    }
    params["eval"]["datasets"]["photos"] = {"protocol": "div2k", "scales": [2]}
    params["variants"]["liif-photos"] = {"role": "other", "train": {"dataset": "photos", "epochs": 1}}
    (repo / "params.yaml").write_text(dump_yaml(params))

    done = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "repro", "evaluate@liif-photos"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(repo)},  # the copy's liif, with its new module
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    prepared = repo / "data/prepared/photos"
    assert sorted(p.name for p in (prepared / "train/HR").iterdir()) == names[:3]
    assert (prepared / "test/LR_bicubic/X2/p4x2.png").is_file() and (prepared / "manifest.tsv").is_file()
    assert "photos" in json.loads((repo / "metrics/eval/liif-photos.json").read_text())["psnr"]  # trained, scored on it
    changed = sh("git", "status", "--porcelain", "--", "liif", "stages", "dvc.yaml", "tests/conftest.py", cwd=repo)
    assert changed.splitlines() == ["?? liif/sources/listed.py"]
