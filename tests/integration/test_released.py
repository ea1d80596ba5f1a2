"""Released weights through the real pipeline, on the tiny profile: a variant naming the authors' released
EDSR-baseline-LIIF (the released-format fixture of ../shared, served from 127.0.0.1) is scored by
``dvc repro evaluate@<v>`` exactly as ``liif evaluate`` scores the file; a wrong checksum, a truncated file, an
HTML error page and a file of another architecture are each refused by ``train@<v>`` in one line, leaving nothing
in ``models/<v>``; a checksum trusted on first use is recorded, then enforced; a ``path:`` variant is copied."""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import FIXTURES, Server, need, needs_dvc, sh, study_copy

from liif.config.params import load_params
from liif.config.variants import resolve_variant
from liif.eval.scores import finished_training, load_trained

pytestmark = needs_dvc

PAPER_LIIF = {"encoder": {"n_resblocks": 16, "n_feats": 64}, "decoder_hidden": [256, 256, 256, 256]}  # the fixture's
ZEROS = "0" * 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def served():
    edsr = (need(FIXTURES) / "edsr-baseline-liif.pth").read_bytes()
    server = Server()
    server.files = {
        "edsr-baseline-liif.pth": edsr,
        "first-use.pth": edsr,
        "cut.pth": edsr[: len(edsr) // 2],
        "login.pth": b"<!DOCTYPE html><html><body>Sign in to download</body></html>",
        "metasr.pth": (FIXTURES / "metasr.pth").read_bytes(),
    }
    yield server
    server.close()


@pytest.fixture(scope="module")
def repo(served, tmp_path_factory):
    """A study copy of the tiny profile whose released variants name the fixture at 127.0.0.1, or on disk."""
    root = tmp_path_factory.mktemp("released")
    fixture = FIXTURES / "edsr-baseline-liif.pth"

    def released(**checkpoint):
        return {"role": "released", "model": PAPER_LIIF, "checkpoint": checkpoint}

    variants = {
        "liif": {"role": "base"},
        "authors": released(url=f"{served.url}/edsr-baseline-liif.pth"),
        "first-use": released(url=f"{served.url}/first-use.pth"),
        "wrong-hash": released(url=f"{served.url}/edsr-baseline-liif.pth", sha256=ZEROS),
        "cut": released(url=f"{served.url}/cut.pth"),
        "login": released(url=f"{served.url}/login.pth"),
        "metasr-file": released(url=f"{served.url}/metasr.pth"),
        "on-disk": released(path=str(fixture), sha256=sha256(fixture.read_bytes())),
    }
    profile = root / "released.yaml"
    profile.write_text(yaml.safe_dump({"variants": variants, "runtime": {"tracking": {"enabled": False}}}))
    return study_copy(root / "repo", "profiles/tiny.yaml", str(profile))


def train(repo, variant: str) -> subprocess.CompletedProcess:
    """``train@<variant>`` as dvc.yaml runs it (its configuration written first), with its own stderr."""
    sh(sys.executable, "stages/configure.py", variant, "--out", f"configs/{variant}.json", cwd=repo)
    command = [sys.executable, "stages/train.py", "--config", f"configs/{variant}.json", "--data", "data/prepared"]
    return subprocess.run(
        [*command, "--out", f"models/{variant}"], cwd=repo, capture_output=True, text=True, timeout=300
    )


def left_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_released_weights_are_scored_as_liif_evaluate_scores_the_file(repo, served):
    sh("dvc", "repro", "evaluate@authors", cwd=repo)
    psnr = json.loads((repo / "metrics" / "eval" / "authors.json").read_text())["psnr"]["sample"]
    test, fixture = repo / "data" / "prepared" / "sample" / "test", FIXTURES / "edsr-baseline-liif.pth"
    for scale, lr in ((2, ["--lr", str(test / "LR_bicubic" / "X2")]), (5, [])):  # shipped LR at x2, made at x5
        command = ["evaluate", "--checkpoint", str(fixture), "--hr", str(test / "HR"), *lr, "--scale", str(scale)]
        cli = json.loads(sh(sys.executable, "-m", "liif.cli", *command, "--protocol", "div2k", "--json", cwd=repo))
        assert psnr[f"x{scale}"] == round(cli["mean_psnr"], 4), (scale, psnr, cli["mean_psnr"])
    digest = sha256(fixture.read_bytes())
    assert json.loads((repo / "weights-checksums.json").read_text()) == {
        f"{served.url}/edsr-baseline-liif.pth": digest  # trusted on first use: no checksum is published
    }
    models = repo / "models" / "authors"
    assert left_in(models) == ["epoch-last.pth", "history.tsv", "released.pth", "summary.json"]
    assert sha256((models / "released.pth").read_bytes()) == digest


def test_a_path_variant_is_copied_and_checked_against_its_checksum(repo):
    done = train(repo, "on-disk")
    assert done.returncode == 0, done.stderr
    models, fixture = repo / "models" / "on-disk", FIXTURES / "edsr-baseline-liif.pth"
    assert (models / "released.pth").read_bytes() == fixture.read_bytes()
    config = resolve_variant(load_params(repo / "params.yaml"), "on-disk")
    assert finished_training(config, models)["config_hash"]  # evaluate@on-disk takes it as a finished training
    ours = load_trained(config, models / "epoch-last.pth").state_dict()
    theirs = torch.load(fixture, map_location="cpu", weights_only=True)["model"]["sd"]
    assert torch.equal(ours["decoder.layers.0.weight"], theirs["imnet.layers.0.weight"])  # the authors' weights


@pytest.mark.parametrize("variant", ["wrong-hash", "cut", "login", "metasr-file"])
def test_a_bad_file_is_one_line_and_leaves_nothing(repo, served, variant):
    url = {"wrong-hash": "edsr-baseline-liif.pth", "metasr-file": "metasr.pth"}.get(variant, f"{variant}.pth")
    url = f"{served.url}/{url}"
    part = f"{url} (copied to models/{variant}/released.pth.part)"
    download_advice = "the download was deleted; check the URL, or use a mirror or a local copy"
    expected = {
        "wrong-hash": f"{url}: sha256 {sha256(served.files['edsr-baseline-liif.pth'])}, not the {ZEROS} of "
        "params.yaml variants.wrong-hash.checkpoint.sha256 (a corrupted or different file); nothing was kept",
        "cut": f"{part}: not a whole PyTorch checkpoint, truncated? (File is not a zip file): {download_advice}",
        "login": f"{part}: not a PyTorch checkpoint (it starts with b'<!DO': an error page, or another file): "
        f"{download_advice}",
        "metasr-file": f"{url}: holds a metasr model, not the liif model of variant metasr-file; nothing was kept: "
        "name the weights of the variant's model, or set variants.metasr-file.model to the file's",
    }[variant]
    trusted = (repo / "weights-checksums.json").read_text()
    done = train(repo, variant)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"train@{variant}: {expected}"]
    assert left_in(repo / "models" / variant) == []  # no epoch-last.pth, no summary.json, no copy of the file
    assert (repo / "weights-checksums.json").read_text() == trusted  # nothing refused is trusted


def test_a_checksum_trusted_on_first_use_is_recorded_then_enforced(repo, served):
    url, first = f"{served.url}/first-use.pth", sha256(served.files["first-use.pth"])
    done = train(repo, "first-use")
    assert done.returncode == 0, done.stderr
    assert f"trusted on first use, recorded in weights-checksums.json: {url}" in done.stderr
    assert json.loads((repo / "weights-checksums.json").read_text())[url] == first
    other = (FIXTURES / "trained-liif.pth").read_bytes()  # the same architecture, other weights
    served.files["first-use.pth"] = other
    try:
        shutil.rmtree(repo / "models" / "first-use")  # a fresh clone downloads the file again
        done = train(repo, "first-use")
    finally:
        served.files["first-use.pth"] = FIXTURES.joinpath("edsr-baseline-liif.pth").read_bytes()
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"train@first-use: {url}: sha256 {sha256(other)}, not the {first} of the copy first trusted (recorded in "
        "weights-checksums.json); nothing was kept; if this copy is the right one, delete its line there"
    ]
    assert left_in(repo / "models" / "first-use") == []
