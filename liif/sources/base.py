"""What every dataset source is and says: where its images come from and what ``prepare`` makes of them.

A source is a class registered in ``liif.sources.SOURCES``; its keyword-only constructor arguments are its keys of
``data.datasets.<name>`` in params.yaml (the schema is built from the signature, so a key it does not take is
refused). ``fetch`` makes the images available (under ``data/raw/<name>``, or where they already are); ``plan`` says
which splits ``prepare`` writes, from which files and how (``Photographs``, ``ShippedPairs``, ``Squares``), so
``liif.data.prepare`` never needs to know which source a dataset has.
"""

from dataclasses import dataclass, field
from pathlib import Path

from liif.errors import UserError
from liif.types import Split


class SourceError(UserError):
    """A dataset source that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Photographs:
    """HR images of one split as RGB PNG, with LR images made from them by MATLAB bicubic at each scale
    (``lr_scales`` None: ``data.lr_scales``); ``crop`` keeps the central crop x crop pixels (small test sets)."""

    split: Split
    images: tuple[Path, ...]
    crop: int | None = None
    lr_scales: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ShippedPairs:
    """HR images of one split with the LR images the dataset ships (``<lr folder>/<stem>x<s><suffix>``), decoded,
    checked and written as RGB PNG; ``lr`` maps each scale to its folder."""

    split: Split
    images: tuple[Path, ...]
    lr: dict[int, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Squares:
    """Each image of one split as squares of every size (the size-varied study): the largest from the central
    square (or, with ``tile``, every whole tile x tile square) by PIL bicubic, the smaller ones from the largest."""

    split: Split
    images: tuple[Path, ...]
    sizes: tuple[int, ...]
    tile: int | None = None


Part = Photographs | ShippedPairs | Squares


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` makes of a dataset: its parts, and where a source drew a split itself (CelebA-HQ), the
    record of which image went where (written as ``data/prepared/<name>/split.json``)."""

    parts: tuple[Part, ...]
    split_record: dict | None = None


class Source:
    """A dataset source. Subclasses register themselves (``@SOURCES.register("name")``) and take their params.yaml
    keys as keyword-only constructor arguments, annotated with their types and ranges (``liif.types``)."""

    name: str  # set by the registry

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        """Make the images of ``dataset`` available; ``raw`` is its own folder ``data/raw/<dataset>`` (not created
        yet), ``trusted`` the file of trust-on-first-use checksums. Returns the folder ``plan`` reads from."""
        raise NotImplementedError

    def root(self, dataset: str, *, raw: Path) -> Path:
        """Where ``fetch`` left the images (without fetching anything): ``raw`` unless the source says otherwise."""
        return raw

    def plan(self, dataset: str, *, raw: Path) -> Plan:
        """What ``prepare`` writes for ``dataset`` from what ``fetch`` left."""
        raise NotImplementedError
