"""Where a dataset comes from: ``data.datasets.<name>.source`` in params.yaml names a registered source.

Each source is one module of this package registering itself (``sample``: the offline photographs of
``liif.sources.sample``; ``official``, ``mirror`` and ``local``: the paper's datasets of the catalogue, in
``liif.sources.official``); its keyword-only constructor arguments are its keys (``liif.sources.base.Source``).
A new module here is a new source: the registry imports every module of the package.
"""

import json
import sys
from pathlib import Path

from liif.errors import UserError
from liif.files import inside
from liif.registry import Registry
from liif.sources.base import Plan, Source, SourceError

__all__ = ["SOURCES", "SourceError", "dataset_plan", "dataset_root", "fetch_dataset", "fetch_datasets", "source_of"]

SOURCES = Registry("dataset source")


def source_of(name: str, spec: dict) -> Source:
    """The source ``data.datasets.<name>`` names, configured with the rest of its keys (checked by the schema)."""
    cls = SOURCES.get(spec.get("source"), where=f"data.datasets.{name}.source")
    return cls(**{key: value for key, value in spec.items() if key != "source"})


def fetch_dataset(name: str, spec: dict, raw_root: str | Path = "data/raw", trusted: str | Path | None = None) -> Path:
    """Make dataset ``name`` available per its spec; returns the folder its source reads when preparing it.

    ``trusted`` is the JSON file of trust-on-first-use checksums of archives without a published one.
    """
    raw = inside(raw_root, name)
    return source_of(name, spec).fetch(name, raw=raw, trusted=None if trusted is None else Path(trusted))


def dataset_root(name: str, spec: dict, raw_root: str | Path = "data/raw") -> Path:
    """Where ``fetch_dataset`` left the images (without fetching anything)."""
    return source_of(name, spec).root(name, raw=inside(raw_root, name))


def dataset_plan(name: str, spec: dict, raw_root: str | Path = "data/raw") -> Plan:
    """What ``prepare`` makes of dataset ``name`` from where ``fetch_dataset`` left it."""
    return source_of(name, spec).plan(name, raw=inside(raw_root, name))


def fetch_datasets(datasets: dict, *, raw_root: str | Path, trusted: str | Path | None = None) -> Path:
    """``fetch_dataset`` for every entry of ``data.datasets``; records where each one ended up in
    ``<raw_root>/sources.json`` (which also keeps ``raw_root`` a folder when every source is local)."""
    raw_root = Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    record = {}
    for name, spec in datasets.items():
        try:
            root = fetch_dataset(name, spec, raw_root, trusted)
        except UserError as e:
            raise SourceError(f"{name}: {e}") from None
        except OSError as e:  # a full disk, a read-only folder
            raise SourceError(
                f"{name}: {e.strerror or e} ({e.filename or raw_root}); free space or fix permissions"
            ) from None
        record[name] = {"source": spec["source"], "root": str(root)}
        print(f"{name}: {spec['source']} -> {root}", file=sys.stderr)
    (raw_root / "sources.json").write_text(json.dumps(record, indent=2) + "\n")
    return raw_root / "sources.json"
