"""Where a dataset comes from (``params.yaml`` ``data.datasets.<name>.source``):

* ``official``: download the catalogue's archives, verify, extract into ``data/raw/<name>``;
* ``mirror``: the same archive names under ``mirror:``, a base URL or a local directory;
* ``local``: an existing folder in the official layout (``path:``), verified and used in place;
* ``sample``: the offline suite of photographs that ship inside installed packages (``SAMPLE_PHOTOS``).

``fetch_dataset`` returns the folder that holds the official layout.
"""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from liif.config.params import SOURCES
from liif.errors import UserError
from liif.files import atomic_write, file_digest, inside
from liif.images import ImageError, decode_image, list_images, write_png
from liif.sources.archives import ArchiveError, check_archive, extract
from liif.sources.catalogue import Archive, CatalogueEntry, lookup
from liif.sources.download import DownloadError, download, verify


class SourceError(UserError):
    """A dataset source that cannot be used; the message says what to change."""


# Real photographs that ship inside installed packages, available offline: scikit-image's (the
# skimage.data functions of these names), scikit-learn's two Flickr photographs (CC BY 2.0) and
# matplotlib's portrait of Grace Hopper (public domain). Licences: README, "The sample suite".
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
PACKAGE_FILES = {  # name -> (package, file inside it); read from the installed package without importing it
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
SAMPLE_PHOTOS = SKIMAGE_PHOTOS + tuple(PACKAGE_FILES)
SAMPLE_SPLITS = ("train", "val", "test")  # a sample dataset lists its photographs per split


def _package_photo(name: str):
    package, inside = PACKAGE_FILES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pip = {"sklearn": "scikit-learn"}.get(package, package)
        raise ImportError(f"the sample photograph {name!r} ships inside {pip}: pip install {pip}")
    rgb, _ = decode_image(Path(spec.origin).parent / inside)
    return rgb


def export_sample_suite(names: list[str], out_dir: str | Path) -> list[Path]:
    """Write the named photographs as PNG files (greyscale ones stay greyscale)."""
    unknown = [n for n in names if n not in SAMPLE_PHOTOS]
    if unknown:
        raise SourceError(f"unknown sample images {unknown}; available: {', '.join(SAMPLE_PHOTOS)}")
    if any(n in SKIMAGE_PHOTOS for n in names):
        try:
            import skimage.data
        except ImportError:
            raise ImportError("the sample suite needs scikit-image: pip install scikit-image") from None
    paths = []
    for name in tqdm(names, desc="sample suite", unit="img", leave=False):
        if name in PACKAGE_FILES:
            image = _package_photo(name)
        else:
            image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        paths.append(Path(out_dir) / f"{name}.png")
        write_png(image, paths[-1])
    return paths


def check_layout(root: Path, dataset: CatalogueEntry, scales: tuple[int, ...] | None = None) -> Path:
    """The folder must hold the dataset's HR images and its LR folders, paired by name."""
    hr = root / dataset.hr_dir
    try:
        images = list_images(hr)
    except ImageError:
        raise SourceError(f"{hr}: no HR images; expected the official layout of {dataset.name} under {root}") from None
    for s in scales if scales is not None else dataset.lr_scales:
        lr = root / dataset.lr_dir.format(s=s)
        missing = [p.name for p in images if not (lr / f"{p.stem}x{s}{p.suffix}").is_file()]
        if missing:
            raise SourceError(f"{lr}: {len(missing)} LR images missing (e.g. {missing[0].rsplit('.', 1)[0]}x{s})")
    return root


def lr_scales(spec: dict, dataset: CatalogueEntry) -> tuple[int, ...]:
    """The shipped LR scales to verify and prepare: ``lr_scales:`` of the spec, else all the catalogue lists.

    A local copy may hold only some of them (``../shared/datasets/div2k`` has X2 only).
    """
    scales = tuple(spec.get("lr_scales", dataset.lr_scales))
    unknown = sorted(set(scales) - set(dataset.lr_scales))
    if unknown:
        raise SourceError(f"lr_scales {unknown}: {dataset.name} ships LR images for x{dataset.lr_scales} only")
    return scales


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


def _record_trusted(trusted: Path | None, records: dict):
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


def _fetch_archive(
    archive: Archive,
    entry: CatalogueEntry,
    *,
    source: str,
    mirror: str | None,
    raw: Path,
    sha256: str | None,
    trusted: Path | None,
) -> Path:
    dest = raw / "archives" / archive.name
    check = _content_check(archive, entry)
    advice = (
        f"it differs from the copy first trusted, recorded in {trusted}; if this one is right, delete its line there"
        if sha256 and not archive.sha256
        else ""
    )
    if source == "official":
        if archive.url is None:
            raise SourceError(entry.notes.format(raw=raw / "archives"))
        return download(archive.url, dest, size=archive.size, sha256=sha256, check=check)
    if mirror is None:
        raise SourceError("source: mirror needs mirror: a base URL or a directory holding the archives")
    if "://" in mirror:
        return download(mirror.rstrip("/") + "/" + archive.name, dest, size=archive.size, sha256=sha256, check=check)
    src = Path(mirror) / archive.name
    if not src.is_file():
        raise SourceError(f"{src}: not found in the mirror directory {mirror}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():  # left by an earlier run: trusted only once it verifies again
        verify(
            dest, size=archive.size, sha256=sha256, check=check, advice=advice or f"delete {dest} to copy {src} again"
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


def _available(archive, spec: dict, raw: Path) -> bool:
    mirror = spec.get("mirror") or ""
    return (raw / "archives" / archive.name).is_file() or "://" in mirror or (Path(mirror) / archive.name).is_file()


def fetch_dataset(name: str, spec: dict, raw_root: str | Path = "data/raw", trusted: str | Path | None = None) -> Path:
    """Make dataset ``name`` available per its spec; returns the root of its official layout.

    ``trusted`` is the JSON file of trust-on-first-use records: an archive without a published checksum
    is recorded there only after it has been fully checked, extracted and found in the expected layout,
    and every later copy must match the record.
    """
    source = spec.get("source")
    if source not in SOURCES:
        raise SourceError(f"data.datasets.{name}.source: {source!r}; expected one of {', '.join(SOURCES)}")
    raw = inside(raw_root, name)
    if source == "sample":
        export_sample_suite([n for split in SAMPLE_SPLITS for n in spec.get(split, [])], raw)
        return raw
    entry = lookup(spec.get("catalogue", name))
    if source == "local":
        if "path" not in spec:
            raise SourceError(f"data.datasets.{name}: source local needs path: (a folder in the official layout)")
        return check_layout(Path(spec["path"]), entry, lr_scales(spec, entry))
    raw.mkdir(parents=True, exist_ok=True)
    known, first_seen = read_trusted(trusted), {}
    for archive in entry.archives:
        if archive.name == "split.json" and source != "official" and not _available(archive, spec, raw):
            continue  # optional: without it a deterministic split is made
        sha256 = archive.sha256 or known.get(archive.name)
        try:
            path = _fetch_archive(
                archive, entry, source=source, mirror=spec.get("mirror"), raw=raw, sha256=sha256, trusted=trusted
            )
            if path.suffix in (".zip", ".tar"):
                _merge(extract(path, raw / "staging" / path.stem, entry.limits), raw / "extracted")
        except (DownloadError, ArchiveError) as e:
            raise SourceError(str(e)) from None
        if sha256 is None:
            first_seen[archive.name] = file_digest(path)
    root = check_layout(raw / "extracted", entry, lr_scales(spec, entry))
    _record_trusted(trusted, first_seen)  # only now: every archive checked, extracted and in its layout
    return root


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


def split_file(name: str, spec: dict, raw_root: str | Path = "data/raw") -> Path | None:
    """CelebA-HQ's optional ``split.json``: beside ``data1024x1024/``, or where a download or mirror copy put it."""
    candidates = [dataset_root(name, spec, raw_root) / "split.json"]
    if spec["source"] != "local":
        candidates.append(inside(raw_root, name) / "archives" / "split.json")
    return next((p for p in reversed(candidates) if p.is_file()), None)


def dataset_root(name: str, spec: dict, raw_root: str | Path = "data/raw") -> Path:
    """Where ``fetch_dataset`` left the official layout (without fetching anything)."""
    if spec["source"] == "sample":
        return inside(raw_root, name)
    if spec["source"] == "local":
        return Path(spec["path"])
    return inside(raw_root, name) / "extracted"
