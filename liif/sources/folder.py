"""Source ``folder``: a folder of your own images, read in place (``data.folders.<name>`` in params.yaml).

Splits come from the folder's ``train/``, ``val/`` and ``test/`` sub-folders when it has any of them; otherwise its
images (not recursively) are split once: ``split: {val: N, test: N}`` images for validation and test, the rest for
training. Which image goes where is decided by a digest of ``seed`` and the file name, so the draw repeats exactly,
and adding or removing one image moves at most a few others; ``data/prepared/<name>/split.json`` records it.

Every image is decoded by ``liif.images`` under the command line's rules (greyscale, palette and alpha to RGB,
16-bit rounded to 8, EXIF orientation applied, several frames refused). ``min_side`` leaves out images whose
shorter side is below it (named on stderr and in split.json); without it training refuses a set holding images
smaller than its crop (``train.inp_size`` x ``train.scale_max``).

The folder is a DVC dependency of its ``prepare-folder`` stage (``dvc.yaml``), which is why folders have their own
section: DVC's ``foreach`` can name a path only from a mapping whose every entry has one.
"""

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Interval

from liif.images import image_size, list_images
from liif.sources import SOURCES
from liif.sources.base import Photographs, Plan, Source, SourceError, Squares
from liif.types import MAX_COUNT, SPLITS, Check, Seed, Size

Held = Annotated[int, Interval(ge=0, le=MAX_COUNT)]  # images held out for a split (0: none)


def _plain_path(path: str) -> str:
    if path.startswith("~"):
        raise ValueError("DVC does not expand ~; write the full path")
    if not path.strip():
        raise ValueError("the folder of images is empty text")
    return path


@SOURCES.register("folder")
@dataclass(frozen=True, kw_only=True)
class Folder(Source):
    """Images of one folder (``path``: absolute, or relative to the repository root), used in place.

    ``split``: images drawn for ``val`` and ``test`` when the folder has no split sub-folders (default: a tenth
    of the images each, at least one); ``seed``: the draw; ``min_side``: leave out smaller images; ``sizes`` and
    ``tile``: squares of every size, as the size-varied study reads them (``liif.sources.base.Squares``);
    ``crop``: only the central crop x crop pixels of each image.
    """

    path: Annotated[str, Check(_plain_path)]
    split: dict[Literal["val", "test"], Held] | None = None
    seed: Seed = 0
    min_side: Size | None = None
    sizes: list[Size] | None = None
    tile: Size | None = None
    crop: Size | None = None

    def root(self, dataset: str, *, raw: Path) -> Path:
        return Path(self.path)

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        return self.root(dataset, raw=raw)

    def plan(self, dataset: str, *, raw: Path) -> Plan:
        splits, record = self.splits()
        parts = []
        for split, images in splits.items():
            if self.sizes:
                parts.append(Squares(split, images, sizes=tuple(self.sizes), tile=self.tile))
            else:
                parts.append(Photographs(split, images, crop=self.crop))
        return Plan(tuple(parts), split_record=record)

    def splits(self) -> tuple[dict[str, tuple[Path, ...]], dict]:
        """The images of each split, and the record of how they were chosen (split.json)."""
        root = Path(self.path)
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            raise SourceError(f"{root}: {what}; data.folders names a folder of images")
        present = [split for split in SPLITS if (root / split).is_dir()]
        if present:
            if self.split is not None:
                raise SourceError(
                    f"{root}: has split sub-folders ({', '.join(present)}), so split: draws nothing; remove it"
                )
            found = {split: list_images(root / split) for split in present}
            record = {"from": "sub-folders"}
        else:
            found = {"all": list_images(root)}
            record = {"from": "drawn", "seed": self.seed}
        skipped = [path for images in found.values() for path in images if not self._big_enough(path)]
        kept = {split: [path for path in images if path not in skipped] for split, images in found.items()}
        chosen = self._draw(kept["all"]) if "all" in kept else kept
        record.update({split: [path.name for path in images] for split, images in chosen.items()})
        if skipped:
            record["skipped"] = [path.relative_to(root).as_posix() for path in skipped]
        return {split: tuple(images) for split, images in chosen.items() if images}, record

    def _big_enough(self, path: Path) -> bool:
        """Whether the image's shorter side reaches ``min_side`` (one left out is named on stderr)."""
        if self.min_side is None:
            return True
        height, width = image_size(path)
        if min(width, height) < self.min_side:
            print(f"{path}: {width}x{height}, below min_side {self.min_side}; left out", file=sys.stderr)
            return False
        return True

    def _draw(self, images: list[Path]) -> dict[str, list[Path]]:
        n = len(images)
        held = self.split if self.split is not None else {"val": max(1, n // 10), "test": max(1, n // 10)}
        n_val, n_test = held.get("val", 0), held.get("test", 0)
        if n_val + n_test >= n:
            raise SourceError(
                f"{self.path}: {n} usable images, {n_val} for val and {n_test} for test leave none to train on; "
                "add images or lower split"
            )

        def rank(path: Path) -> str:
            return hashlib.sha256(f"{self.seed}/{path.name}".encode()).hexdigest()

        order = sorted(images, key=rank)
        return {
            "train": sorted(order[n_val + n_test :]),
            "val": sorted(order[:n_val]),
            "test": sorted(order[n_val : n_val + n_test]),
        }
