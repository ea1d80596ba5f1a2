"""A study of one grey channel (``model.channels: 1``) on a folder of greyscale photographs, by the real
``dvc repro``: LIIF, MetaSR, a fixed-scale up-sampler and Bicubic train and are scored on grey, the report is
written, and the trained checkpoint upscales an image to a greyscale file through the ``liif`` command."""

import json
import sys

import pytest
from conftest import needs_dvc, sh, study_copy
from PIL import Image

from liif.config.params import dump_yaml, read_yaml
from liif.models.checkpoint import load_checkpoint
from liif.sources.sample import export_sample_suite

pytestmark = [pytest.mark.integration, needs_dvc]

GREY_PHOTOS = ["camera", "moon", "coins", "brick", "grass", "gravel"]  # the sample suite's greyscale photographs


def test_a_grey_study_trains_scores_reports_and_upscales_grey(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for png in export_sample_suite(GREY_PHOTOS, tmp_path / "suite"):
        Image.open(png).convert("L").save(folder / png.name)
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    params = read_yaml(repo / "params.yaml")
    params["data"]["folders"] = {"grey": {"path": str(folder), "split": {"val": 1, "test": 1}}}
    params["model"]["channels"] = 1
    params["train"]["dataset"] = "grey"
    params["eval"]["datasets"] = {"grey": {"protocol": "div2k", "scales": [2, 3]}}
    params["variants"] = {  # a variant naming another model than the base's sets its channels too
        "liif": {"role": "base"},
        "metasr": {"role": "metasr", "model": {"name": "metasr", "predictor_hidden": 16, "channels": 1}},
        "upsample-x2": {"role": "fixed-scale", "model": {"name": "fixed-scale", "scale": 2, "channels": 1}},
        "bicubic": {"role": "bicubic", "model": {"name": "bicubic", "channels": 1}},
    }
    (repo / "params.yaml").write_text(dump_yaml(params))
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "grey", cwd=repo)
    sh("dvc", "repro", cwd=repo)

    scores = {}
    for variant in params["variants"]:
        config = json.loads((repo / "configs" / f"{variant}.json").read_text())
        assert config["model"]["args"]["channels"] == 1
        scores[variant] = json.loads((repo / "metrics/eval" / f"{variant}.json").read_text())["psnr"]["grey"]
        assert set(scores[variant]) == {"x2", "x3"} and all(5 < v < 60 for v in scores[variant].values()), scores
    print("grey study PSNR (dB):", json.dumps(scores, sort_keys=True))
    assert min(scores["bicubic"].values()) > 25  # a photograph's grey against its own bicubic: no colour lost
    assert (repo / "reports/README.md").is_file() and (repo / "metrics/headline.json").is_file()
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)

    checkpoint = repo / "models/liif/epoch-last.pth"
    model, _ = load_checkpoint(checkpoint)
    assert model.channels == 1 and model.encoder.head[0].in_channels == 1 and model.decoder.layers[-1].out_features == 1
    info = sh(sys.executable, "-m", "liif.cli", "info", checkpoint, cwd=repo)
    assert "channels:    1 (grey)" in info
    [test_image] = json.loads((repo / "data/prepared/grey/split.json").read_text())["test"]
    out = tmp_path / "upscaled.png"
    sh(
        sys.executable,
        "-m",
        "liif.cli",
        "upscale",
        folder / test_image,
        "-o",
        out,
        "--scale",
        "2.5",
        "--checkpoint",
        checkpoint,
        cwd=repo,
    )
    with Image.open(folder / test_image) as source, Image.open(out) as written:
        assert written.mode == "L" and written.size == (round(source.width * 2.5), round(source.height * 2.5))
