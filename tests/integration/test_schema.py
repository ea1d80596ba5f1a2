"""A wrong parameter costs one line through the stage scripts themselves: configure, prepare, train, evaluate and
report refuse a mistaken params.yaml with exit code 2 and one line, before writing anything; a bug keeps its
traceback."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from liif.config.params import load_params

ROOT = Path(__file__).resolve().parents[2]


def default():
    return load_params(ROOT / "params.yaml")


def _run(script: str, args: list[str], cwd: Path, params: dict):
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    command = [sys.executable, str(ROOT / "stages" / script), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_configure_refuses_a_misspelt_ablation_and_writes_nothing(tmp_path):
    params = default()
    params["variants"]["liif-c"]["model"] = {"cell_decod": False}
    done = _run("configure.py", ["liif-c", "--out", "configs/liif-c.json"], tmp_path, params)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "configure@liif-c: params.yaml variants.liif-c.model.cell_decod: unknown key; did you mean cell_decode?"
    ]
    assert not (tmp_path / "configs").exists()
    fixed = copy.deepcopy(params)
    fixed["variants"]["liif-c"]["model"] = {"cell_decode": False}
    done = _run("configure.py", ["liif-c", "--out", "configs/liif-c.json"], tmp_path, fixed)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "configs/liif-c.json").read_text()) == json.loads(
        (ROOT / "configs/liif-c.json").read_text()
    )


def test_prepare_and_report_refuse_bad_params_in_one_line(tmp_path):
    params = default()
    params["data"]["datasets"]["sample"]["tain"] = ["astronaut"]
    done = _run("prepare.py", ["sample", "--raw", "raw", "--out", "prepared"], tmp_path, params)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "data.datasets.sample.tain: unknown key; did you mean train?" in done.stderr
    params = default()
    params["variants"]["liif-seed1"]["role"] = {"seed_of": "liif-seed9"}
    args = ["--metrics", "m", "--models", "m", "--data", "d", "--out", "r", "--headline", "h.json"]
    done = _run("report.py", args, tmp_path, params)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "variants.liif-seed1.role {seed_of: liif-seed9}: 'liif-seed9' is not a variant of params.yaml" in done.stderr


def test_an_unexpected_error_shows_its_traceback_and_names_the_stage(tmp_path):
    """liif/errors.py: a bug (here a KeyError) keeps its traceback, plus a line naming stage and variant."""
    code = (
        "import sys; from liif.errors import run_stage\n"
        "def main():\n    return {}['missing']\n"
        "sys.exit(run_stage('train', main, ['--config', 'configs/liif-c.json']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "KeyError: 'missing'" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("train@liif-c: failed with the unexpected error above")


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_train_and_evaluate_refuse_bad_params_before_touching_the_model(tmp_path, script):
    """A stage run by hand (or by `dvc repro --single-item`) with a stale configs/<v>.json still checks params.yaml
    first: one line, exit 2, the finished checkpoint untouched."""
    params = default()
    params["train"]["batch_size"] = 0
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/liif.json").write_text((ROOT / "configs/liif.json").read_text())
    last = tmp_path / "models/liif/epoch-last.pth"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"a finished model")
    args = {
        "train.py": ["--data", "d", "--out", "models/liif"],
        "evaluate.py": ["--data", "d", "--models", "models/liif", "--metrics", "m.json", "--per-image", "p.tsv"],
    }[script]
    done = _run(script, ["--config", "configs/liif.json", *args], tmp_path, params)
    stage = script.removesuffix(".py")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"{stage}@liif: params.yaml train.batch_size: 0: Input should be greater than or equal to 1"
    ], done.stderr
    assert last.read_bytes() == b"a finished model" and sorted(p.name for p in last.parent.iterdir()) == [last.name]
    assert not (tmp_path / "m.json").exists()


def test_a_full_disk_is_one_line_naming_the_file():
    code = (
        "import errno, os, sys; from liif.errors import run_stage\n"
        "def main():\n    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), 'models/liif/.epoch-last.pth.tmp')\n"
        "sys.exit(run_stage('train', main, ['--config', 'configs/liif.json']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "train@liif: the disk is full writing models/liif/.epoch-last.pth.tmp: free space and rerun (finished "
        "checkpoints are kept)"
    ]
