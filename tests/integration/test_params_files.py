"""params.yaml and the profiles as files: read as DVC reads them (YAML 1.2), a broken one refused in one line
naming the file, and params.yaml rewritten by scripts/apply_profile.py whole or not at all."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liif.config.params import dump_yaml, load_params

ROOT = Path(__file__).resolve().parents[2]


def default() -> dict:
    return load_params(ROOT / "params.yaml")


def run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def _params_text(**lines: str) -> str:
    """The default params.yaml as text with some ``train`` lines written by hand (as DVC writes them)."""
    text = dump_yaml(default())
    for key, value in lines.items():
        old = f"\n  {key}: {default()['train'][key]!s}\n".replace("True", "true").replace("False", "false")
        assert old in text, old
        text = text.replace(old, f"\n  {key}: {value}\n", 1)
    return text


def test_configure_trains_the_learning_rate_and_seed_dvc_records(tmp_path):
    (tmp_path / "params.yaml").write_text(_params_text(lr="1e-05", seed="010"))
    done = run([str(ROOT / "stages/configure.py"), "liif", "--out", "configs/liif.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "configs/liif.json").read_text()
    assert '"lr": 1e-05' in written
    assert json.loads(written)["train"]["seed"] == 10


def test_off_for_a_switch_says_true_or_false(tmp_path):
    (tmp_path / "params.yaml").write_text(_params_text(augment="off"))
    done = run([str(ROOT / "stages/configure.py"), "liif", "--out", "configs/liif.json"], tmp_path)
    assert one_line(done) == (
        "configure@liif: params.yaml train.augment: 'off': Input should be a valid boolean (write true or false)"
    )
    assert not (tmp_path / "configs").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: [1\n", "params.yaml line 2:"),
        ("- a\n- b\n", "params.yaml: expected a mapping of sections, found list"),
        ("train:\n  lr: 1\n  lr: 2\n", 'params.yaml line 3: found duplicate key "lr"'),
    ],
)
def test_a_broken_params_yaml_is_one_line_for_stages_and_slurm(tmp_path, text, message):
    (tmp_path / "params.yaml").write_text(text)
    done = run([str(ROOT / "stages/download.py"), "--raw", "raw", "--trusted", "t.json"], tmp_path)
    assert one_line(done).startswith(f"download: {message}")
    done = run(["-m", "liif.study.slurm"], tmp_path)
    assert one_line(done).startswith(f"python -m liif.study.slurm: {message}")


@pytest.fixture
def checkout(tmp_path) -> Path:
    """params.yaml and the profiles in a folder of their own."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "profiles").mkdir()
    for profile in (ROOT / "profiles").glob("*.yaml"):
        (tmp_path / "profiles" / profile.name).write_text(profile.read_text())
    return tmp_path


def apply(checkout: Path, *profiles: str, limit: str = "") -> subprocess.CompletedProcess:
    script = f"{sys.executable} {ROOT / 'scripts/apply_profile.py'} {' '.join(profiles)}"
    return subprocess.run(["bash", "-c", f"{limit}{script}"], cwd=checkout, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "text, message",
    [
        ("- tiny\n", "profiles/bad.yaml: expected a mapping of params.yaml sections, found list"),
        ("data: null\n", "profiles/bad.yaml data: expected a mapping of keys, found nothing (null)"),
        ("eval: 5\n", "profiles/bad.yaml eval: expected a mapping of keys, found int 5"),
        ("data:\n  datasets: 5\n", "profiles/bad.yaml data.datasets: expected a mapping of datasets, found int 5"),
        ("train: {lr: 1\n", "profiles/bad.yaml line 2:"),
        ("train:\n  lr: 1\n  lr: 2\n", 'profiles/bad.yaml line 3: found duplicate key "lr"'),
        ("trian: {}\n", "profiles/bad.yaml trian: unknown section"),
    ],
)
def test_a_broken_profile_is_one_line_naming_it(checkout, text, message):
    (checkout / "profiles/bad.yaml").write_text(text)
    before = (checkout / "params.yaml").read_text()
    line = one_line(apply(checkout, "profiles/bad.yaml"))
    assert line.startswith(message) and line.endswith("params.yaml is unchanged"), line
    assert (checkout / "params.yaml").read_text() == before


def test_a_profile_key_the_schema_refuses_names_the_profile(checkout):
    (checkout / "profiles/bad.yaml").write_text("train:\n  scale_max: .inf\n")
    line = one_line(apply(checkout, "profiles/bad.yaml"))
    assert (
        line
        == "profiles/bad.yaml: params.yaml train.scale_max: inf: Input should be a finite number; params.yaml is unchanged"
    )


def test_a_full_disk_leaves_params_yaml_as_it_was(checkout):
    before = (checkout / "params.yaml").read_text()
    line = one_line(apply(checkout, "profiles/tiny.yaml", limit="ulimit -f 1; "))
    assert line.startswith("params.yaml: could not write it (") and line.endswith("params.yaml is unchanged")
    assert (checkout / "params.yaml").read_text() == before
    assert sorted(p.name for p in checkout.iterdir()) == ["params.yaml", "profiles"]  # no temporary file left


def test_profiles_stack_in_one_call_and_never_over_an_applied_one(checkout):
    done = apply(checkout, "profiles/paper.yaml", "profiles/paper-smoke.yaml")
    assert done.returncode == 0, done.stderr
    assert "paper-smoke.yaml patching profiles/paper.yaml" in done.stderr
    kept = next(line for line in done.stderr.splitlines() if line.startswith("kept from profiles/paper.yaml: "))
    assert "train.dataset=div2k" in kept and "train.lr=0.0001" in kept  # what paper-smoke leaves as paper's
    assert "runtime.save_every" not in kept and "data.datasets" not in kept  # what paper-smoke sets itself
    applied = (checkout / "params.yaml").read_text()
    assert applied.startswith("# params.yaml with profiles/paper.yaml + profiles/paper-smoke.yaml applied;")
    assert load_params(checkout / "params.yaml")["train"]["dataset"] == "div2k"  # paper's, which smoke keeps
    line = one_line(apply(checkout, "profiles/tiny.yaml"))
    assert line.startswith(
        "params.yaml already has profiles/paper.yaml + profiles/paper-smoke.yaml applied: `git checkout params.yaml` "
        "first, or name every profile in one call (python scripts/apply_profile.py profiles/paper.yaml "
        "profiles/paper-smoke.yaml profiles/tiny.yaml)"
    ), line
    assert (checkout / "params.yaml").read_text() == applied


def test_a_stacked_profile_leaving_a_dataset_behind_is_refused(checkout):
    """paper then tiny: tiny replaces the datasets, paper's train.dataset div2k would survive and name none."""
    before = (checkout / "params.yaml").read_text()
    line = one_line(apply(checkout, "profiles/paper.yaml", "profiles/tiny.yaml"))
    assert line.startswith("profiles/paper.yaml + profiles/tiny.yaml: params.yaml variants.")
    assert ".train.dataset: 'div2k' is not a dataset of data.datasets" in line
    assert (checkout / "params.yaml").read_text() == before
