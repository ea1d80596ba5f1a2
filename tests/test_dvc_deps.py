"""DVC's view must be true: each stage's ``deps`` are exactly the project modules its script imports
(transitively, through ``liif``), so editing any of them makes ``dvc status`` show the stage."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Project modules (``liif/x.py``) imported anywhere in a file, inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            candidate = ROOT / (name.replace(".", "/") + ".py")
            if name.split(".")[0] == "liif" and candidate.is_file():
                found.add(candidate.relative_to(ROOT).as_posix())
    return found


def closure(script: Path) -> set[str]:
    """The script and every project module it reaches."""
    seen, todo = set(), [script.relative_to(ROOT).as_posix()]
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo += imported_modules(ROOT / rel)
    if (ROOT / "liif" / "__init__.py").read_text().strip():  # a package body runs on every import
        seen.add("liif/__init__.py")
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_script(stage: dict) -> Path:
    body = stage.get("do", stage)
    match = re.search(r"python (stages/\S+\.py)", body["cmd"])
    assert match, f"{body['cmd']}: expected 'python stages/<stage>.py ...'"
    return ROOT / match[1]


def code_deps(stage: dict) -> set[str]:
    deps = stage.get("do", stage)["deps"]
    paths = [next(iter(d)) if isinstance(d, dict) else d for d in deps]
    return {p for p in paths if p.endswith(".py")}


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_are_exactly_its_imports(name):
    stage = stages()[name]
    expected, declared = closure(stage_script(stage)), code_deps(stage)
    assert not expected - declared, f"{name}: dvc.yaml misses {sorted(expected - declared)}"
    assert not declared - expected, f"{name}: dvc.yaml lists modules it does not import: {sorted(declared - expected)}"


def test_closure_follows_imports_transitively():
    reached = closure(ROOT / "stages" / "evaluate.py")
    assert {"liif/evaluate.py", "liif/render.py", "liif/models.py", "liif/encoders.py", "liif/resize.py"} <= reached
