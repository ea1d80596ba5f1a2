"""The generic registry: registration, lookup, the user's unknown name, and the import of a package's modules."""

import pytest

from liif.errors import UserError
from liif.registry import Registry, UnknownName


def test_register_and_get_sets_the_name():
    things = Registry("thing", "liif.encoders")

    @things.register("cube")
    class Cube:
        pass

    assert things.get("cube") is Cube and Cube.name == "cube"
    assert "cube" in things.names() and "cube" in things


def test_unknown_name_is_a_user_error_naming_the_closest_and_the_valid_ones():
    things = Registry("thing", "liif.encoders")
    things.register("cube")(type("Cube", (), {}))
    with pytest.raises(UnknownName, match=r"params.yaml x.name: 'cub' is not a thing; did you mean cube\?") as e:
        things.get("cub", where="params.yaml x.name")
    assert isinstance(e.value, UserError) and "valid: " in str(e.value)


def test_a_name_registered_twice_is_a_bug():
    things = Registry("thing", "liif.encoders")
    things.register("cube")(type("Cube", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        things.register("cube")(type("Other", (), {}))


def test_first_use_imports_every_module_of_the_package(tmp_path, monkeypatch):
    package = tmp_path / "toypkg"
    package.mkdir()
    (package / "__init__.py").write_text("from liif.registry import Registry\nTOYS = Registry('toy', 'toypkg')\n")
    (package / "ball.py").write_text("from toypkg import TOYS\n\n@TOYS.register('ball')\nclass Ball:\n    pass\n")
    (package / "_private.py").write_text("raise RuntimeError('private modules are not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toypkg

    assert toypkg.TOYS.names() == ["ball"]
