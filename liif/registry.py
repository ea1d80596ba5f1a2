"""One registry per concept (model, encoder, dataset source, metric): a name of params.yaml -> the object it means.

A component registers itself where it is defined (``@MODELS.register(<name>)`` above its class) and the registry
imports every module of its package the first time it is asked, so a new module is the only file a new component
needs. A component's keyword-only constructor arguments are its settings (``settings``): the params.yaml schema is
built from their annotations and defaults, so a default is written once, in the signature.
"""

import difflib
import importlib
import inspect
import pkgutil
import typing

from liif.errors import UserError

PACKAGES = {  # each concept -> the package whose modules register its components (one module per component)
    "model": "liif.models",
    "encoder": "liif.encoders",
    "metric": "liif.metrics",
    "dataset source": "liif.sources",
}


class UnknownName(UserError):
    """A name (of params.yaml, of the command line) that no component of the concept registered."""


class Registry:
    """Named components of one concept; ``kind`` names the concept in messages, ``package`` holds its modules."""

    _by_kind: dict[str, "Registry"] = {}

    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package or PACKAGES[kind]  # the project's concepts: their package from PACKAGES
        self._entries: dict[str, object] = {}
        self._loaded = False
        Registry._by_kind[kind] = self

    @classmethod
    def of(cls, kind: str) -> "Registry":
        """The registry of a concept by its kind, its package imported on first use. The config checks names of
        params.yaml this way (``eval.metrics``, ``data.datasets.<d>.source``), so a stage that only validates a
        section naming a metric or a source does not import (and, for DVC, depend on) every metric and source."""
        if kind not in cls._by_kind:
            importlib.import_module(PACKAGES[kind])
        return cls._by_kind[kind]

    def register(self, name: str):
        """Decorator storing the object under ``name`` and setting its ``name`` attribute to it."""

        def decorate(obj):
            known = self._entries.get(name)
            if known is not None and known is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice: by {_origin(known)} and {_origin(obj)}")
            obj.name = name
            self._entries[name] = obj
            return obj

        return decorate

    def get(self, name: str, *, where: str = ""):
        """The object registered as ``name``; an unknown name is the user's mistake, named with the valid ones.
        ``where`` says where the name was written (``params.yaml model.name``)."""
        self._load()
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        names = self.names()
        match = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"did you mean {match[0]}? " if match else ""
        prefix = f"{where}: " if where else ""
        raise UnknownName(f"{prefix}{name!r} is not a {self.kind}; {hint}valid: {', '.join(names)}")

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        self._load()
        return isinstance(name, str) and name in self._entries

    def _load(self):
        """Import every module of the package once (each registers what it defines); ``_private`` modules skipped."""
        if self._loaded:
            return
        self._loaded = True  # before importing: a module may ask its own registry while it is being imported
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")


REQUIRED = inspect.Parameter.empty  # the default of a setting that has none


def settings(component) -> dict[str, tuple[object, object]]:
    """A component's settings: keyword-only argument -> (annotation, default or ``REQUIRED``), in signature order.
    Arguments named in its ``from_model`` (passed by the code that builds it, such as an encoder's ``upscale``)
    are not settings."""
    init = component.__init__ if isinstance(component, type) else component
    hints = typing.get_type_hints(init, include_extras=True)
    internal = set(getattr(component, "from_model", ()))
    return {
        name: (hints.get(name, typing.Any), parameter.default)
        for name, parameter in inspect.signature(component).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in internal
    }


def _origin(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
