"""DVC's view must be true: each stage's ``deps`` are exactly the project modules its script imports
(transitively, through ``liif``), so editing any of them makes ``dvc status`` show the stage."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from liif.registry import PACKAGES

ROOT = Path(__file__).resolve().parents[2]


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
            if name.split(".")[0] != "liif":
                continue
            parts = name.split(".")
            for depth in range(1, len(parts)):  # a package's __init__ runs before any module inside it
                init = ROOT.joinpath(*parts[:depth], "__init__.py")
                if init.is_file():
                    found.add(init.relative_to(ROOT).as_posix())
            for candidate in (ROOT / (name.replace(".", "/") + ".py"), ROOT.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    found.add(candidate.relative_to(ROOT).as_posix())
    return found


def registry_packages() -> set[str]:
    """Packages of ``liif`` holding a registry (``liif.registry.PACKAGES``): using one imports every module of the
    package, so all of them, and what they import, run wherever the registry is used. A registry the config
    looks up by kind only to check a name of params.yaml (``Registry.of``) is not a dependency: no output
    depends on it."""
    return {package.split(".")[1] for package in PACKAGES.values()}


def closure(script: Path) -> set[str]:
    """The script and every project module it reaches."""
    seen, todo = set(), [script.relative_to(ROOT).as_posix()]
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo += imported_modules(ROOT / rel)
            parts = rel.split("/")
            if parts[0] == "liif" and len(parts) > 2 and parts[1] in registry_packages():  # discovery imports them all
                todo += [m.relative_to(ROOT).as_posix() for m in (ROOT / "liif" / parts[1]).rglob("*.py")]
    if (ROOT / "liif" / "__init__.py").read_text().strip():  # a package body runs on every import
        seen.add("liif/__init__.py")
    return seen


def dep_units(modules: set[str]) -> set[str]:
    """``liif/models/liif.py`` -> ``liif/models``; ``liif/files.py`` and ``stages/train.py`` stay themselves."""
    units = set()
    for rel in modules:
        parts = rel.split("/")
        units.add("/".join(parts[:2]) if parts[0] == "liif" and len(parts) > 2 else rel)
    return units - {"liif/__init__.py"}


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
    return {p for p in paths if p.endswith(".py") or p.startswith("liif/")}


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_are_exactly_its_imports(name):
    stage = stages()[name]
    expected, declared = dep_units(closure(stage_script(stage))), code_deps(stage)
    assert not expected - declared, f"{name}: dvc.yaml misses {sorted(expected - declared)}"
    assert not declared - expected, f"{name}: dvc.yaml lists modules it does not import: {sorted(declared - expected)}"


def study_stages() -> dict[str, tuple[Path, dict]]:
    """Every stage of the study pipelines (``experiments/<study>/dvc.yaml``) by ``<study>:<stage>``."""
    return {
        f"{path.parent.name}:{name}": (path.parent, stage)
        for path in sorted((ROOT / "experiments").glob("*/dvc.yaml"))
        for name, stage in yaml.safe_load(path.read_text())["stages"].items()
    }


def study_code_deps(folder: Path, stage: dict) -> set[str]:
    """A study stage's code deps as paths from the repository root (its deps are relative to its folder)."""
    paths = [next(iter(d)) if isinstance(d, dict) else d for d in stage["deps"]]
    rooted = {(folder / p).resolve().relative_to(ROOT).as_posix() for p in paths}
    return {p for p in rooted if p.endswith(".py") or p.startswith("liif/")}


@pytest.mark.parametrize("name", list(study_stages()))
def test_study_deps_are_exactly_its_imports(name):
    folder, stage = study_stages()[name]
    match = re.search(r"python (\S+\.py)", stage["cmd"])
    assert match, f"{name}: expected 'python <script>.py ...' run in {folder}"
    expected, declared = dep_units(closure(folder / match[1])), study_code_deps(folder, stage)
    assert not expected - declared, f"{name}: its dvc.yaml misses {sorted(expected - declared)}"
    assert not declared - expected, (
        f"{name}: its dvc.yaml lists modules it does not import: {sorted(declared - expected)}"
    )


def test_study_data_deps_are_root_outputs():
    """A study reads the root pipeline's prepared data and models (one copy, which DVC brings up to date before
    the study runs), never data of its own; its other deps are files of its own folder."""
    root_outs = {"data/prepared", "models", "configs"}
    for name, (folder, stage) in study_stages().items():
        for dep in [next(iter(d)) if isinstance(d, dict) else d for d in stage["deps"]]:
            path = (folder / dep).resolve()
            if path.is_relative_to(ROOT / "liif") or path.parent == folder:
                continue
            if not path.is_relative_to(ROOT):
                continue  # data outside the repository (held-out's benchmark photographs)
            rel = path.relative_to(ROOT).as_posix()
            assert rel.rsplit("/", 1)[0] in root_outs, f"{name}: {dep} is neither code nor a root stage's output"


def test_closure_follows_imports_transitively():
    reached = closure(ROOT / "stages" / "evaluate.py")
    assert {
        "liif/eval/scores.py",
        "liif/eval/render.py",
        "liif/models/__init__.py",
        "liif/encoders/__init__.py",
        "liif/images.py",
    } <= reached
