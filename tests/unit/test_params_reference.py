"""docs/params-reference.md is generated from the code (scripts/params_reference.py) and must match it."""

import importlib.util

import pytest
from conftest import ROOT

from liif.models import MODELS, SRModel
from liif.types import Width

SCRIPT = ROOT / "scripts" / "params_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("params_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_current(reference):
    """A new argument, default or comment in the code without regenerating the file fails here."""
    committed = (ROOT / "docs" / "params-reference.md").read_text()
    assert committed == reference.generate(), (
        "docs/params-reference.md is stale: run python scripts/params_reference.py"
    )


class ReferenceToy(SRModel):
    """A toy model that exists only in this test."""

    def __init__(
        self,
        *,
        width: Width = 12,  # the toy's hidden width
        sharpen: bool = False,
    ):
        super().__init__()


@pytest.fixture
def toy_model():
    MODELS.register("reference-toy")(ReferenceToy)
    try:
        yield ReferenceToy
    finally:
        MODELS._entries.pop("reference-toy")


def test_a_registered_component_appears_with_its_arguments(reference, toy_model):
    text = reference.generate()
    section = text.split("### `reference-toy`", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    assert "A toy model that exists only in this test." in section
    assert "| `width` | `Width` | integer in [1, 4096] | `12` | the toy's hidden width |" in section
    assert "| `sharpen` | `bool` | true or false | `false` |  |" in section
    assert "`reference-toy`" in text.split("### `model`", 1)[1].split("### `train`", 1)[0]  # a valid model.name


def test_the_reference_leaves_out_the_toy_again(reference):
    assert "reference-toy" not in reference.generate()


def test_check_flags_a_stale_file(reference, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "params-reference.md"
    stale.write_text(reference.generate().replace("| `width` |", "| `widht` |") + "extra\n")
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    monkeypatch.setattr(reference, "OUTPUT", stale)
    assert reference.main(["--check"]) == 1
    assert capsys.readouterr().err.strip() == (
        "params-reference.md is stale: regenerate it with python scripts/params_reference.py"
    )
    assert reference.main([]) == 0
    assert reference.main(["--check"]) == 0
