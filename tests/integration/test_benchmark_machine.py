"""benchmarks/machine.py: the machine line every benchmark prints beside its table (git through a subprocess)."""

import ast
import importlib.util
import re

import pytest
import torch
from conftest import ROOT, sh

BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def machine():
    spec = importlib.util.spec_from_file_location("machine", BENCHMARKS / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commit_all(repo):
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c", cwd=repo)


def test_the_revision_is_marked_dirty_only_when_tracked_files_changed(machine, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert machine.git_revision(repo) == "no git checkout"
    sh("git", "init", "-q", cwd=repo)
    (repo / "a.py").write_text("x = 1\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "b.py").write_text("y = 2\n")
    commit_all(repo)
    head = sh("git", "rev-parse", "--short", "HEAD", cwd=repo).strip()
    assert machine.git_revision(repo) == head
    (repo / "untracked.txt").write_text("not part of the revision\n")
    assert machine.git_revision(repo) == head
    (repo / "a.py").write_text("x = 2\n")
    assert machine.git_revision(repo) == f"{head}+dirty"
    assert machine.git_revision(repo / "sub") == "no git checkout"  # a copied tree inside another repository


def test_the_machine_line_names_cpu_cores_torch_threads_gpu_and_revision(machine, monkeypatch):
    monkeypatch.setattr(machine, "git_revision", lambda: "abc1234+dirty")
    line = machine.machine_line()
    cores = r"\d+ cores|\d+ of \d+ cores"
    gpu = "no GPU" if not torch.cuda.is_available() else re.escape(torch.cuda.get_device_name(0))
    pattern = (
        rf"machine: .+, ({cores}), torch {re.escape(torch.__version__)} \({torch.get_num_threads()} threads\), "
        rf"{gpu}.*, git abc1234\+dirty"
    )
    assert re.fullmatch(pattern, line), line
    assert machine.cpu_model() and "\n" not in line


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "machine.py"))
def test_every_benchmark_prints_the_machine_line(script):
    tree = ast.parse((BENCHMARKS / script).read_text())
    imported = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "machine"
        and any(a.name == "machine_line" for a in node.names)
        for node in ast.walk(tree)
    )
    printed = any(
        isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "print"
        and any(isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "machine_line" for arg in node.args)
        for node in ast.walk(tree)
    )
    assert imported and printed, f"benchmarks/{script} does not print machine_line()"
