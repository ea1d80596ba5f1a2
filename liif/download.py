"""Downloads that can be trusted: streamed, resumable, retried, verified, atomic; safe extraction.

A download goes to ``<name>.part`` and is renamed only after its size and
checksum check out, so a half-downloaded file never looks complete; an
interrupted download resumes with an HTTP Range request. Extraction refuses
any entry that would land outside the target folder (absolute paths, ``..``,
links pointing outside) before writing anything.
"""

import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from liif.files import file_digest

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download or archive that cannot be used; the message names the URL or file and what to do."""


def verify(path: Path, *, size: int | None = None, sha256: str | None = None, md5: str | None = None,
           source: str = "", advice: str = "delete it and download again"):  # fmt: skip
    """Raise DownloadError when ``path`` does not have the expected size or checksum.

    The message names ``source`` (the URL or mirror file the bytes came from) and ends with ``advice``.
    """
    what = f"{source} (copied to {path})" if source else str(path)
    if size is not None and path.stat().st_size != size:
        raise DownloadError(
            f"{what}: {path.stat().st_size} bytes, expected {size}; it is truncated or not the official "
            f"archive: {advice}"
        )
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected and file_digest(path, algorithm) != expected.lower():
            raise DownloadError(
                f"{what}: {algorithm} mismatch (expected {expected}); it is corrupted or not the official "
                f"archive: {advice}"
            )


def download(
    url: str,
    dest: str | Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        verify(dest, size=size, sha256=sha256, md5=md5, advice=f"delete {dest} to download {url} again")
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, size=size, timeout=timeout, progress=progress)
            break
        except DownloadError:
            raise
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code < 500 and e.code != 429:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the URL or use a mirror") from None
            if attempt == retries:
                raise DownloadError(
                    f"{url}: failed after {retries + 1} attempts ({e}); rerun to resume from "
                    f"{part.stat().st_size if part.exists() else 0} bytes, or use a mirror"
                ) from None
            time.sleep(backoff * 2**attempt)
    try:
        verify(part, size=size, sha256=sha256, md5=md5, source=url,
               advice="the download was deleted; check the URL, or use a mirror or a local copy")  # fmt: skip
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, *, size: int | None, timeout: float, progress: bool):
    """Append the rest of ``url`` to ``part`` (a Range request when part of it is there)."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else size
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=Path(url).name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got < total:
        raise OSError(f"connection closed after {got} of {total} bytes")


def _safe_target(root: Path, name: str) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DownloadError(f"refusing archive entry {name!r}: it points outside the target folder")
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise DownloadError(f"refusing archive entry {name!r}: it points outside the target folder")
    return target


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a zip or tar archive into ``target``; every entry is checked before anything is written.

    Extraction goes to a temporary folder beside ``target`` that is renamed at the end, so a failed
    extraction leaves nothing behind.
    """
    archive, target = Path(archive), Path(target)
    staging = target.with_name(f".{target.name}.extracting")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    root = staging.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _safe_target(root, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DownloadError(f"{archive}: refusing symbolic link entry {info.filename!r}")
                zf.extractall(root)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    dest = _safe_target(root, m.name)
                    if m.issym() or m.islnk():
                        link = (dest.parent / m.linkname) if m.issym() else root / m.linkname
                        _safe_target(root, os.path.relpath(os.path.normpath(link), root))
                    elif not (m.isfile() or m.isdir()):
                        raise DownloadError(f"{archive}: refusing special entry {m.name!r}")
                tf.extractall(root, members=members, filter="data")
        else:
            raise DownloadError(
                f"{archive}: neither a zip nor a tar archive (truncated download?); delete it and retry"
            )
    except DownloadError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: {e}" if str(archive) not in str(e) else str(e)) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: damaged archive ({e}); delete it and download again") from None
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
