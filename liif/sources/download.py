"""Downloads that can be trusted: streamed, resumable, retried, verified, atomic.

A download goes to ``<name>.part`` and is renamed only after its length, its
checksum (when one is known) and its content (``check``: for an archive its
own integrity, see ``liif.sources.archives``) check out, so a half-downloaded file or
an error page never looks complete. An interrupted download resumes with an
HTTP Range request; a reply that does not continue where the file stopped, a
body shorter or longer than announced, or a leftover ``.part`` that cannot be
right is discarded or retried, never promoted.
"""

import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from liif.errors import UserError
from liif.files import file_digest

CHUNK = 1 << 20


class DownloadError(UserError):
    """A download or archive that cannot be used; the message names the URL or file and what to do."""


def verify(
    path: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    check: Callable[[Path], None] | None = None,
    source: str = "",
    advice: str = "delete it and download again",
):
    """Raise DownloadError when ``path`` does not have the expected size, checksum or content.

    ``check`` (raising on bad content) runs only where no sha256 vouches for the bytes.

    The message names ``source`` (the URL or mirror file the bytes came from) and ends with ``advice``.
    """
    what = f"{source} (copied to {path})" if source else str(path)
    if size is not None and path.stat().st_size != size:
        raise DownloadError(
            f"{what}: {path.stat().st_size} bytes, expected {size}; it is truncated or not the official "
            f"archive: {advice}"
        )
    if sha256 and file_digest(path, "sha256") != sha256.lower():
        raise DownloadError(
            f"{what}: sha256 mismatch (expected {sha256}); it is corrupted or not the official archive: {advice}"
        )
    if check is not None and not sha256:
        try:
            check(path)
        except UserError as e:  # a refusal of the content, with its own message
            raise DownloadError(f"{what}: {e}: {advice}") from None


def download(
    url: str,
    dest: str | Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    check: Callable[[Path], None] | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        verify(dest, size=size, sha256=sha256, check=check, advice=f"delete {dest} to download {url} again")
        return dest
    part = dest.with_name(dest.name + ".part")
    leftover = part.exists()  # from an interrupted run: resumed, but it may not be this file at all
    for fresh in (False, True) if leftover else (True,):
        _fetch_with_retries(url, part, size=size, retries=retries, backoff=backoff, timeout=timeout, progress=progress)
        try:
            verify(
                part,
                size=size,
                sha256=sha256,
                check=check,
                source=url,
                advice="the download was deleted; check the URL, or use a mirror or a local copy",
            )
            break
        except DownloadError:
            part.unlink(missing_ok=True)
            if fresh:
                raise
            print(f"{part}: the resumed download did not verify; downloading it again from the start", file=sys.stderr)
    os.replace(part, dest)
    return dest


def _fetch_with_retries(url: str, part: Path, *, size, retries: int, backoff: float, timeout: float, progress: bool):
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, size=size, timeout=timeout, progress=progress)
            return
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code < 500 and e.code != 429:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the URL or use a mirror") from None
            if attempt == retries:
                raise DownloadError(
                    f"{url}: failed after {retries + 1} attempts ({e}); rerun to resume from "
                    f"{part.stat().st_size if part.exists() else 0} bytes, or use a mirror"
                ) from None
            time.sleep(backoff * 2**attempt)


def _fetch(url: str, part: Path, *, size: int | None, timeout: float, progress: bool):
    """Append the rest of ``url`` to ``part`` (a Range request when part of it is there).

    Raises OSError (retried by ``download``) when the body ends short of what was announced.
    """
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # cannot be the file: start over
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # complete: verification decides
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after our end: complete, or not this file; verification decides
            return
        raise
    with response:
        if have and response.status == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range") or "")
            if not match or int(match[1]) != have:  # not the continuation we asked for: start over
                part.unlink()
                raise OSError(f"the server resumed at {response.headers.get('Content-Range')!r}, not at byte {have}")
        elif have:  # the server ignored the range and sends everything: restart, unless it is not the file
            length = response.headers.get("Content-Length")
            if size is not None and length is not None and int(length) != size:
                raise OSError(f"the server ignored the range and sent {length} bytes, not the {size} expected")
            have = 0
        length = response.headers.get("Content-Length")
        total = int(length) + have if length is not None else size
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
    if total is not None and got > total:
        part.unlink()
        raise OSError(f"received {got} bytes, more than the {total} announced; starting over")
    if total is not None and got < total:
        raise OSError(f"connection closed after {got} of {total} bytes")
