"""Where prepared data lives: the one place that spells the folder layout every later stage reads.

::

    <root>/<dataset>/<split>/HR/<name>.png                       # split: train | val | test
    <root>/<dataset>/<split>/LR_bicubic/X<s>/<name>x<s>.png      # MATLAB bicubic, as the official sets
    <root>/<dataset>/<split>/<size>/<name>.png                   # CelebA-HQ faces at size x size
    <root>/<dataset>/split.json                                  # CelebA-HQ: which faces went where
    <root>/<dataset>/manifest.tsv                                # path, bytes, md5 of every file

``root`` is ``data/prepared`` in the pipeline (``dvc.yaml`` passes it to the stages).
"""

from dataclasses import dataclass
from pathlib import Path

from liif.files import inside
from liif.types import SPLITS


@dataclass(frozen=True)
class PreparedData:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def dataset(self, name: str) -> Path:
        return inside(self.root, name)

    def split(self, name: str, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        return self.dataset(name) / split

    def hr(self, name: str, split: str) -> Path:
        return self.split(name, split) / "HR"

    def lr(self, name: str, split: str, scale: int) -> Path:
        return self.split(name, split) / "LR_bicubic" / f"X{scale}"

    def sized(self, name: str, split: str, size: int) -> Path:
        return self.split(name, split) / str(size)

    def split_record(self, name: str) -> Path:
        return self.dataset(name) / "split.json"

    def manifest(self, name: str) -> Path:
        return self.dataset(name) / "manifest.tsv"
