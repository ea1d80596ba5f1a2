"""Extending the study touches one new module plus params.yaml: a toy component of each concept, written into a
temporary copy of the repository, trained and scored by the real pipeline (docs/extending.md)."""

import json

import pytest
from conftest import needs_dvc, sh, study_copy

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

    def __init__(self, *, channels: Width = 8):
        super().__init__()
        self.config = dict(channels=channels)  # what its checkpoints rebuild it from
        self.encoder = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(channels, 3)
        self.receptive_radius = 2  # LR pixels a prediction depends on (the renderer's tile margin)

    def prepare(self, grid: LatentGrid) -> LatentGrid:
        return grid

    def query(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = grid.size
        rows, cols = nearest_index(coord[..., 0], h), nearest_index(coord[..., 1], w)
        return self.out(grid.gather(rows, cols))
'''
TOY_VARIANT = "  toy: {role: other, model: {name: toy, channels: 4}}\n"


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
    assert config["model"] == {"name": "toy", "args": {"channels": 4}}
    assert config["train"]["samples"] == "downsampled"
    assert (repo / "models/toy/epoch-last.pth").is_file()
    scores = json.loads((repo / "metrics/eval/toy.json").read_text())["psnr"]["sample"]
    assert set(scores) == {"x2", "x5"} and all(value > 0 for value in scores.values())
    changed = sh("git", "status", "--porcelain", "--", "liif", "stages", "dvc.yaml", "tests", "params.yaml", cwd=repo)
    assert sorted(changed.split()) == ["??", "M", "liif/models/toy.py", "params.yaml"]
