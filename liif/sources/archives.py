"""Dataset archives: checked whole before anything is trusted, extracted without ever leaving their folder.

No archive of this project's datasets legitimately holds links or special
files, so ``check_archive`` refuses every symbolic link, hard link, device,
FIFO and any other non-regular member, every name that is absolute or climbs
with ``..``, and every member whose declared size or compression ratio is
absurd for the dataset (``ArchiveLimits``, stated per dataset in
``liif.sources.catalogue``). It also checks the archive's own integrity: a zip's
central directory and every member's CRC, a tar read to its end-of-archive
marker (a tar cut at a member boundary otherwise looks complete).

``extract`` then writes only regular files and folders, itself, one by one,
into a fresh staging folder (never through Python's tar filter, which has been
bypassed: CVE-2025-4517), opens each file with ``O_NOFOLLOW | O_EXCL`` after
checking that its folder's real location is inside the staging folder, counts
the bytes against the declared size, and renames the staging folder into place
only when everything succeeded.
"""

import os
import shutil
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from liif.errors import UserError

BLOCK = 1 << 20


class ArchiveError(UserError):
    """An archive that cannot be trusted or extracted; the message names the file and what to do."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What a member of a dataset archive may declare; anything beyond is refused before extraction."""

    max_member_bytes: int = 256 << 20  # one image; the largest DIV2K PNG is under 10 MB
    max_ratio: float = 50.0  # uncompressed / compressed size of one zip member (images barely compress)
    max_members: int = 200_000


@dataclass(frozen=True)
class Member:
    name: str  # the relative path inside the archive, POSIX separators
    is_dir: bool
    size: int  # declared uncompressed size


def _member_path(archive: Path, name: str) -> PurePosixPath:
    pure = PurePosixPath(name.replace("\\", "/"))
    if "\0" in name or pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise ArchiveError(f"{archive}: refusing entry {name!r}: it points outside the target folder")
    return pure


def _zip_members(archive: Path, limits: ArchiveLimits) -> list[Member]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ArchiveError(f"{archive}: not a readable zip archive, truncated or not a zip ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ArchiveError(f"{archive}: {len(infos)} entries, more than the {limits.max_members} allowed")
        members = []
        for info in infos:
            _member_path(archive, info.filename)
            kind = (info.external_attr >> 16) & 0o170000
            if kind not in (0, 0o100000, 0o040000):  # unset (DOS), regular file, directory
                raise ArchiveError(f"{archive}: refusing entry {info.filename!r}: a link or special file")
            if info.file_size > limits.max_member_bytes:
                raise ArchiveError(
                    f"{archive}: refusing entry {info.filename!r}: declares {info.file_size} bytes, "
                    f"more than {limits.max_member_bytes} for one file of this dataset"
                )
            if info.file_size > limits.max_ratio * max(info.compress_size, 4096):
                raise ArchiveError(
                    f"{archive}: refusing entry {info.filename!r}: {info.compress_size} bytes that "
                    f"expand to {info.file_size} (a decompression bomb?)"
                )
            members.append(Member(info.filename, info.is_dir(), info.file_size))
        _refuse_overlaps(archive, zf)
        try:
            bad = zf.testzip()  # reads every member: CRC and length
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
            raise ArchiveError(f"{archive}: damaged zip archive ({e}); delete it and download again") from None
        if bad is not None:
            raise ArchiveError(f"{archive}: damaged zip archive (CRC error in {bad!r}); delete it and download again")
    return members


def _refuse_overlaps(archive: Path, zf: zipfile.ZipFile):
    """Every member's local header and data must lie before the next one's: overlapping members (one
    compressed stream quoted by many entries) are a decompression bomb that per-entry ratios miss."""
    spans = []
    with open(archive, "rb") as f:
        for info in zf.infolist():
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise ArchiveError(f"{archive}: entry {info.filename!r} has no local header; refusing the archive")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            spans.append((info.header_offset, info.header_offset + 30 + name_len + extra_len + info.compress_size))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise ArchiveError(f"{archive}: entries overlap (one stream shared by several); refusing the archive")


def _tar_members(archive: Path, limits: ArchiveLimits) -> list[Member]:
    members = []
    try:
        with tarfile.open(archive, mode="r:") as tf:  # plain tar only: no compressed streams to bound
            for info in tf:
                _member_path(archive, info.name)
                if not (info.isreg() or info.isdir()) or info.issparse():
                    kind = (
                        "a symbolic link"
                        if info.issym()
                        else "a hard link"
                        if info.islnk()
                        else "a sparse file"
                        if info.issparse()
                        else "a special file"
                    )
                    raise ArchiveError(f"{archive}: refusing entry {info.name!r}: {kind}")
                if info.size > limits.max_member_bytes:
                    raise ArchiveError(
                        f"{archive}: refusing entry {info.name!r}: declares {info.size} bytes, "
                        f"more than {limits.max_member_bytes} for one file of this dataset"
                    )
                members.append(Member(info.name, info.isdir(), info.size))
                if len(members) > limits.max_members:
                    raise ArchiveError(f"{archive}: more than the {limits.max_members} entries allowed")
            end = tf.offset  # where the end-of-archive marker must start
    except tarfile.TarError as e:
        raise ArchiveError(f"{archive}: damaged tar archive ({e}); delete it and download again") from None
    with open(archive, "rb") as f:
        f.seek(end)
        marker = f.read(1024)
        trailing = any(block.strip(b"\0") for block in iter(lambda: f.read(BLOCK), b""))
    if len(marker) < 1024 or marker.strip(b"\0"):
        raise ArchiveError(
            f"{archive}: truncated tar archive (no end-of-archive marker after its last entry); "
            "delete it and download again"
        )
    if trailing:  # e.g. a zip appended to a tar: readers that look at the end would see another archive
        raise ArchiveError(f"{archive}: data after the tar's end-of-archive marker; refusing the archive")
    return members


def archive_kind(archive: Path) -> str:
    """``zip`` or ``tar``, from the first bytes; the one decision both checking and extraction follow."""
    with open(archive, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) == 512 and head[257:262] == b"ustar" or _old_tar_header(head):
        return "tar"
    raise ArchiveError(
        f"{archive}: neither a zip nor a tar archive (an error page, or a truncated download?); "
        "delete it and download again"
    )


def check_archive(archive: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> list[Member]:
    """Read a whole zip or tar archive and refuse it unless it is intact and holds only safe entries."""
    archive = Path(archive)
    members = (_zip_members if archive_kind(archive) == "zip" else _tar_members)(archive, limits)
    declared, stored = sum(m.size for m in members), archive.stat().st_size
    if declared > limits.max_ratio * max(stored, 1 << 20):
        raise ArchiveError(
            f"{archive}: {stored} bytes that declare {declared} once extracted (a decompression "
            "bomb?); refusing the archive"
        )
    return members


def _old_tar_header(head: bytes) -> bool:
    """A pre-POSIX tar header: its checksum field matches its bytes."""
    if len(head) < 512:
        return False
    try:
        stored = int(head[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 8 * 32 + sum(head[156:512])


def _open_members(archive: Path, kind: str):
    """Yield (name, is_dir, declared size, readable stream or None) in archive order."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                with zf.open(info) if not info.is_dir() else _nothing() as stream:
                    yield info.filename, info.is_dir(), info.file_size, stream
    else:
        with tarfile.open(archive, mode="r:") as tf:
            for info in tf:
                with tf.extractfile(info) if info.isreg() else _nothing() as stream:
                    yield info.name, info.isdir(), info.size, stream


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _inside(root: Path, path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def extract(archive: str | Path, target: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Check ``archive`` whole, then extract it into ``target``: all of it, or (on any error) nothing."""
    archive, target = Path(archive), Path(target)
    members = check_archive(archive, limits)
    expected = [(m.name, m.is_dir, m.size) for m in members]
    declared = sum(m.size for m in members)
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if declared > free:
        raise ArchiveError(
            f"{archive}: needs {declared} bytes to extract, {free} free under {target.parent}; "
            "free some space and run again"
        )
    staging = target.with_name(f".{target.name}.extracting")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    root = Path(os.path.realpath(staging))
    try:
        for position, (name, is_dir, size, stream) in enumerate(_open_members(archive, archive_kind(archive))):
            if position >= len(expected) or expected[position] != (name, is_dir, size):
                raise ArchiveError(f"{archive}: entry {name!r} differs from what was checked; refusing the archive")
            path = root / _member_path(archive, name)
            if is_dir:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _inside(root, path.parent):
                raise ArchiveError(f"{archive}: refusing entry {name!r}: its folder resolves outside the target")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
            written = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(BLOCK):
                    written += len(chunk)
                    if written > size:
                        raise ArchiveError(f"{archive}: entry {name!r} holds more than the {size} bytes it declares")
                    out.write(chunk)
            if written != size:
                raise ArchiveError(f"{archive}: entry {name!r} holds {written} of the {size} bytes it declares")
    except ArchiveError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except FileExistsError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(f"{archive}: entry {Path(e.filename).name!r} appears twice; refusing the archive") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(f"{archive}: damaged archive or unwritable target ({e}); delete it and retry") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
