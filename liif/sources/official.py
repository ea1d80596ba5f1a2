"""Sources ``official``, ``mirror`` and ``local``: the paper's datasets of the catalogue (``liif.sources.catalogue``).

* ``official``: download the catalogue's archives, verify, extract into ``data/raw/<name>``;
* ``mirror``: the same archive names under ``mirror:``, a base URL or a local directory;
* ``local``: an existing folder in the official layout (``path:``), verified and used in place.

DIV2K and the benchmarks keep their shipped LR images; CelebA-HQ (a catalogue entry with ``squares``) is split into
train and test and prepared as squares of every size, as the paper does.
"""

import json
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from annotated_types import Interval

from liif.files import atomic_write, file_digest
from liif.images import ImageError, list_images
from liif.sources import SOURCES
from liif.sources.archives import ArchiveError, check_archive, extract
from liif.sources.base import Plan, ShippedPairs, Source, SourceError, Squares
from liif.sources.catalogue import Archive, CatalogueEntry, lookup
from liif.sources.download import DownloadError, download, verify
from liif.types import Scale, Seed, Split

Fraction = Annotated[float, Interval(gt=0, lt=1)]


@dataclass(frozen=True, kw_only=True)
class Catalogued(Source):
    """What the three sources of the catalogue's datasets take; not a source itself.

    ``catalogue``: the dataset of the catalogue (default: the dataset's own name); ``split``: where prepare puts it;
    ``lr_scales``: the shipped LR scales to verify and prepare (default: all the catalogue lists; a local copy may
    hold only some, ``../shared/datasets/div2k`` has X2 only); ``val_fraction`` and ``seed``: CelebA-HQ without a
    ``split.json``, the test share and the seed of its shuffle.
    """

    catalogue: str | None = None
    split: Split = "test"
    lr_scales: list[Scale] | None = None
    val_fraction: Fraction = 0.2
    seed: Seed = 0

    def entry(self, dataset: str) -> CatalogueEntry:
        return lookup(self.catalogue or dataset)

    def scales(self, entry: CatalogueEntry) -> tuple[int, ...]:
        scales = tuple(entry.lr_scales if self.lr_scales is None else self.lr_scales)
        unknown = sorted(set(scales) - set(entry.lr_scales))
        if unknown:
            raise SourceError(f"lr_scales {unknown}: {entry.name} ships LR images for x{entry.lr_scales} only")
        return scales

    def root(self, dataset: str, *, raw: Path) -> Path:
        return raw / "extracted"

    def split_file(self, dataset: str, *, raw: Path) -> Path | None:
        """CelebA-HQ's optional ``split.json``: beside ``data1024x1024/``, or where a download or mirror copy put it."""
        candidates = [self.root(dataset, raw=raw) / "split.json", raw / "archives" / "split.json"]
        return next((p for p in reversed(candidates) if p.is_file()), None)

    def plan(self, dataset: str, *, raw: Path) -> Plan:
        root, entry = self.root(dataset, raw=raw), self.entry(dataset)
        images = tuple(list_images(root / entry.hr_dir))
        if entry.squares:
            split = celeba_split(
                [p.name for p in images],
                split_json=self.split_file(dataset, raw=raw),
                val_fraction=self.val_fraction,
                seed=self.seed,
            )
            parts = tuple(
                Squares(part, tuple(root / entry.hr_dir / n for n in split[key]), sizes=entry.squares)
                for part, key in (("train", "train"), ("test", "val"))
            )
            return Plan(parts, split_record=split)
        lr = {s: root / entry.lr_dir.format(s=s) for s in self.scales(entry)} if entry.lr_dir else {}
        return Plan((ShippedPairs(self.split, images, lr=lr),))


def celeba_split(names: list[str], *, split_json: Path | None, val_fraction: float, seed: int) -> dict:
    """``split.json`` (keys train/val, file names or stems) when given, else a seeded shuffle of sorted names."""
    if split_json is not None and split_json.is_file():
        raw = json.loads(split_json.read_text())
        stems = {Path(n).stem: n for n in names}
        split = {k: [stems[Path(str(x)).stem] for x in raw[k] if Path(str(x)).stem in stems] for k in ("train", "val")}
        return {**split, "source": str(split_json)}
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val]), "source": f"seeded shuffle (seed {seed})"}


def check_layout(root: Path, dataset: CatalogueEntry, scales: tuple[int, ...]) -> Path:
    """The folder must hold the dataset's HR images and its LR folders, paired by name."""
    hr = root / dataset.hr_dir
    try:
        images = list_images(hr)
    except ImageError:
        raise SourceError(f"{hr}: no HR images; expected the official layout of {dataset.name} under {root}") from None
    for s in scales:
        lr = root / dataset.lr_dir.format(s=s)
        missing = [p.name for p in images if not (lr / f"{p.stem}x{s}{p.suffix}").is_file()]
        if missing:
            raise SourceError(f"{lr}: {len(missing)} LR images missing (e.g. {missing[0].rsplit('.', 1)[0]}x{s})")
    return root


@SOURCES.register("local")
@dataclass(frozen=True, kw_only=True)
class Local(Catalogued):
    """An existing folder in the official layout (``path:``, relative to the repository root), used in place."""

    path: str

    def root(self, dataset: str, *, raw: Path) -> Path:
        return Path(self.path)

    def split_file(self, dataset: str, *, raw: Path) -> Path | None:
        candidate = self.root(dataset, raw=raw) / "split.json"
        return candidate if candidate.is_file() else None

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        entry = self.entry(dataset)
        return check_layout(Path(self.path), entry, self.scales(entry))


@dataclass(frozen=True, kw_only=True)
class Archived(Catalogued):
    """The catalogue's archives, each fetched, verified and extracted into ``data/raw/<name>/extracted``."""

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        """An archive without a published checksum is recorded in ``trusted`` only after it has been fully checked,
        extracted and found in the expected layout, and every later copy must match the record."""
        entry = self.entry(dataset)
        raw.mkdir(parents=True, exist_ok=True)
        known, first_seen = read_trusted(trusted), {}
        for archive in entry.archives:
            if archive.name == "split.json" and not self.offers(archive, raw=raw):
                continue  # optional: without it a deterministic split is made
            sha256 = archive.sha256 or known.get(archive.name)
            try:
                path = self.get(archive, entry, raw=raw, sha256=sha256, trusted=trusted)
                if path.suffix in (".zip", ".tar"):
                    _merge(extract(path, raw / "staging" / path.stem, entry.limits), raw / "extracted")
            except (DownloadError, ArchiveError) as e:
                raise SourceError(str(e)) from None
            if sha256 is None:
                first_seen[archive.name] = file_digest(path)
        root = check_layout(raw / "extracted", entry, self.scales(entry))
        record_trusted(trusted, first_seen)  # only now: every archive checked, extracted and in its layout
        return root

    def offers(self, archive: Archive, *, raw: Path) -> bool:
        """Whether an optional archive (CelebA-HQ's ``split.json``) is there to fetch."""
        return True

    def get(self, archive: Archive, entry: CatalogueEntry, *, raw: Path, sha256: str | None, trusted: Path | None):
        """One archive at ``raw/archives/<name>``, verified against its size, checksum and content."""
        raise NotImplementedError


@SOURCES.register("official")
@dataclass(frozen=True, kw_only=True)
class Official(Archived):
    """The catalogue's download links."""

    def get(self, archive: Archive, entry: CatalogueEntry, *, raw: Path, sha256: str | None, trusted: Path | None):
        if archive.url is None:
            raise SourceError(entry.notes.format(raw=raw / "archives"))
        dest = raw / "archives" / archive.name
        return download(archive.url, dest, size=archive.size, sha256=sha256, check=_content_check(archive, entry))


@SOURCES.register("mirror")
@dataclass(frozen=True, kw_only=True)
class Mirror(Archived):
    """The same archive names under ``mirror:``, a base URL or a local directory."""

    mirror: str

    def offers(self, archive: Archive, *, raw: Path) -> bool:
        return (
            (raw / "archives" / archive.name).is_file()
            or "://" in self.mirror
            or (Path(self.mirror) / archive.name).is_file()
        )

    def get(self, archive: Archive, entry: CatalogueEntry, *, raw: Path, sha256: str | None, trusted: Path | None):
        dest = raw / "archives" / archive.name
        check = _content_check(archive, entry)
        if "://" in self.mirror:
            url = self.mirror.rstrip("/") + "/" + archive.name
            return download(url, dest, size=archive.size, sha256=sha256, check=check)
        advice = (
            f"it differs from the copy first trusted, recorded in {trusted}; if this one is right, delete its line there"
            if sha256 and not archive.sha256
            else ""
        )
        src = Path(self.mirror) / archive.name
        if not src.is_file():
            raise SourceError(f"{src}: not found in the mirror directory {self.mirror}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_file():  # left by an earlier run: trusted only once it verifies again
            verify(
                dest,
                size=archive.size,
                sha256=sha256,
                check=check,
                advice=advice or f"delete {dest} to copy {src} again",
            )
        else:
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(src, tmp)
            try:
                verify(
                    tmp,
                    size=archive.size,
                    sha256=sha256,
                    check=check,
                    source=str(src),
                    advice=advice or f"nothing was kept; replace it with the official {archive.name}",
                )
            except DownloadError:
                tmp.unlink()
                raise
            tmp.replace(dest)
        return dest


def read_trusted(trusted: Path | None) -> dict:
    """Trust-on-first-use SHA-256 records (archive name -> digest) of archives without a published checksum."""
    if trusted is None or not Path(trusted).is_file():
        return {}
    try:
        records = json.loads(Path(trusted).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{trusted}: not a JSON file ({e}); restore it from git") from None
    if not isinstance(records, dict) or not all(isinstance(v, str) for v in records.values()):
        raise SourceError(f"{trusted}: expected an object of archive name -> SHA-256; restore it from git")
    return records


def record_trusted(trusted: Path | None, records: dict):
    """Add trust-on-first-use records (name -> SHA-256) to ``trusted``, once what they vouch for has been checked."""
    if trusted is None or not records:
        return
    merged = {**read_trusted(trusted), **records}
    with atomic_write(trusted) as f:
        f.write((json.dumps(dict(sorted(merged.items())), indent=2) + "\n").encode())
    print(f"trusted on first use, recorded in {trusted}: {', '.join(sorted(records))}", file=sys.stderr)


def _check_split_json(path: Path):
    try:
        raw = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"not a JSON file ({e})") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), list) for k in ("train", "val")):
        raise SourceError("expected a JSON object with lists train and val")


def _content_check(archive: Archive, entry: CatalogueEntry):
    """What a file of this name must hold: an intact, safe archive, or CelebA-HQ's split."""
    if archive.name.endswith((".zip", ".tar")):
        return lambda path: check_archive(path, entry.limits)
    if archive.name == "split.json":
        return _check_split_json
    return None


def _merge(staged: Path, extracted: Path):
    """Move an extracted archive's top-level entries into the dataset's layout (archives may share folders)."""
    for item in staged.iterdir():
        target = extracted / item.name
        if target.exists():
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
                continue
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(item), target)
    shutil.rmtree(staged)
