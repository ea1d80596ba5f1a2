"""The one error rule at the edges (the DVC stages and the ``liif`` command): a ``UserError`` or a full disk is one
line and exit 2; anything else is a bug, shown with its traceback and a last line naming what failed, exit 1."""

import errno
import importlib.util
import json
from pathlib import Path

import pytest

import liif.cli
from liif.config.params import ParamsError
from liif.errors import UserError, explain, run_stage
from liif.models.checkpoint import CheckpointError
from liif.train.divergence import DivergedError

ROOT = Path(__file__).resolve().parents[2]


BUG = ValueError("too many values to unpack (expected 2)")  # reads like a bad value; it is a bug


FULL = OSError(errno.ENOSPC, "No space left on device", "models/liif/.epoch-last.pth.tmp")


def stage(name: str):
    """``stages/<name>.py`` as a module, its ``main`` not run."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raising(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


def run_configure(monkeypatch, error: BaseException) -> int:
    """configure@liif whose ``load_params`` raises ``error``."""
    configure = stage("configure")
    monkeypatch.setattr(configure, "load_params", raising(error))
    monkeypatch.setattr("sys.argv", ["stages/configure.py", "liif", "--out", "configs/liif.json"])
    return run_stage("configure", configure.main)


def test_a_bug_in_a_stage_keeps_its_traceback_and_names_the_stage_and_variant(monkeypatch, capsys):
    assert run_configure(monkeypatch, BUG) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: too many values to unpack" in err
    assert err.strip().splitlines()[-1] == (
        "configure@liif: failed with the unexpected error above (a bug: please report it with this output)"
    )


@pytest.mark.parametrize("error", [KeyError("scale"), FileNotFoundError(2, "No such file", "x.png"), TypeError("x")])
def test_other_plain_exceptions_are_bugs_too(monkeypatch, capsys, error):
    assert run_configure(monkeypatch, error) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_user_error_in_a_stage_is_one_line_exit_2(monkeypatch, capsys):
    assert run_configure(monkeypatch, ParamsError("params.yaml train.lr: a finite learning rate")) == 2
    assert capsys.readouterr().err == "configure@liif: params.yaml train.lr: a finite learning rate\n"


def test_a_full_disk_in_a_stage_is_one_line_exit_2(monkeypatch, capsys):
    assert run_configure(monkeypatch, FULL) == 2
    assert capsys.readouterr().err == (
        "configure@liif: the disk is full writing models/liif/.epoch-last.pth.tmp: free space and rerun "
        "(finished checkpoints are kept)\n"
    )


def run_train(monkeypatch, tmp_path, error: BaseException) -> int:
    """train@liif whose training raises ``error`` (what it reads before is stubbed: no params.yaml, no data)."""
    train = stage("train")
    config = tmp_path / "configs" / "liif.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"variant": "liif", "train": {"epochs": 1}}))
    runtime = {"nproc": 1}
    monkeypatch.setattr(train, "load_params", lambda: {})
    monkeypatch.setattr(train, "check_params", lambda params, **kwargs: None)
    monkeypatch.setattr(train, "runtime_settings", lambda params: runtime)
    monkeypatch.setattr(train, "train_variant", raising(error))
    argv = ["--config", str(config), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "models" / "liif")]
    monkeypatch.setattr("sys.argv", ["stages/train.py", *argv])
    return run_stage("train", train.main)


def test_a_bug_in_training_names_train_at_its_variant(monkeypatch, tmp_path, capsys):
    assert run_train(monkeypatch, tmp_path, BUG) == 1
    err = capsys.readouterr().err
    assert "ValueError: too many values to unpack" in err
    assert err.strip().splitlines()[-1].startswith("train@liif: failed with the unexpected error above")


def test_a_diverged_training_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    assert run_train(monkeypatch, tmp_path, DivergedError("liif diverged at epoch 3: loss nan is not finite")) == 2
    assert capsys.readouterr().err == "train: liif diverged at epoch 3: loss nan is not finite\n"


def test_every_liif_error_is_a_user_error_and_only_they_are_explained():
    assert issubclass(ParamsError, UserError) and issubclass(CheckpointError, UserError)
    assert explain(BUG) is None and explain(OSError(errno.EACCES, "denied")) is None
    assert explain(FULL) == "the disk is full writing models/liif/.epoch-last.pth.tmp: free space and rerun"


def run_info(monkeypatch, error: BaseException) -> int:
    monkeypatch.setattr(liif.cli, "load_checkpoint", raising(error))
    return liif.cli.main(["info", "model.pth"])


def test_a_bug_in_the_cli_keeps_its_traceback_and_names_the_command(monkeypatch, capsys):
    assert run_info(monkeypatch, BUG) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: too many values to unpack" in err
    assert err.strip().splitlines()[-1].startswith("liif info: failed with the unexpected error above")


def test_a_user_error_in_the_cli_is_one_line_exit_2(monkeypatch, capsys):
    assert run_info(monkeypatch, CheckpointError("model.pth: not a checkpoint; pass a .pth file")) == 2
    assert capsys.readouterr().err == "liif: error: model.pth: not a checkpoint; pass a .pth file\n"


def test_a_full_disk_in_the_cli_is_one_line_exit_2(monkeypatch, capsys):
    assert run_info(monkeypatch, FULL) == 2
    assert capsys.readouterr().err == (
        "liif: error: the disk is full writing models/liif/.epoch-last.pth.tmp: free space and rerun\n"
    )
