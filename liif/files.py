"""Writing files so that a crash never leaves half of one, and digesting them.

Images and checkpoints go through ``atomic_write``: the bytes land in a hidden
temporary file beside the target and are renamed over it (after an fsync where
a file is costly to redo, such as a checkpoint). The temporary file is created
with the usual ``0o666 & ~umask`` mode, so teammates on a shared cluster can
read what the pipeline writes.
"""

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

BLOCK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | Path, *, durable: bool = True):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` appears complete or not at all.

    ``durable`` also flushes the bytes to disk before the rename (survives a power cut; slower for
    the 120,000 small files of a prepared CelebA-HQ, which ``dvc repro`` can remake anyway)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, unlike mkstemp's 0600
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in blocks (archives are gigabytes)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def inside(root: str | Path, name: str) -> Path:
    """``root / name``, refused unless it resolves to a folder strictly inside ``root``: a dataset name from
    params.yaml is written to and deleted under ``data/raw`` and ``data/prepared``, never beside them."""
    base = Path(root).resolve()
    path = (base / name).resolve()
    if base not in path.parents:
        raise ValueError(f"{name!r}: not a name of a folder inside {root}; use letters, digits, - and _")
    return Path(root) / name
