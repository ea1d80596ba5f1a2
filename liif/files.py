"""Writing files so that a crash never leaves half of one, and digesting them.

Images and checkpoints go through ``atomic_write``: the bytes land in a hidden
temporary file beside the target and are renamed over it (after an fsync where
a file is costly to redo, such as a checkpoint). The temporary file is created
with the usual ``0o666 & ~umask`` mode, so teammates on a shared cluster can
read what the pipeline writes.

One training per model folder: the trainer holds an ``flock`` on ``<folder>.lock`` beside it.

The lock file sits beside the folder, not inside it: ``models/<v>`` is a DVC output that DVC hashes
(``.dvcignore`` keeps ``models/*.lock`` out of the report stage's ``models`` dependency too). The
kernel releases an ``flock`` when its holder dies, however it dies, so a lock left by a killed training
is free again without anyone deciding that it is stale; the text in the file (PID, host, start time)
only names the holder in the refusal.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import socket
import time
from pathlib import Path

from liif.errors import UserError

BLOCK = 1 << 20

# The files of a training run in its model folder (models/<v>/), named once here, below every package that reads
# them: training writes them (liif.train), evaluation and the report read them (liif.eval, liif.study) without
# importing training code, and this module already owns the folder's other convention, its lock.
LAST = "epoch-last.pth"  # the resume point, and the model evaluation scores by default
BEST = "epoch-best.pth"  # the best validation PSNR so far
SNAPSHOT = "epoch-{epoch}.pth"  # every runtime.save_every epochs
CHECKPOINTS = "epoch-*.pth"  # the three above
HISTORY = "history.tsv"  # one line per epoch: loss, validation PSNR, lr, seconds
SUMMARY = "summary.json"  # written when a training finishes
DIVERGED = "diverged.json"  # a diverged run's record: evaluation refuses the model until a run saves an epoch again
RUN_MARKER = "mlflow-run.txt"  # names the MLflow run in progress, closed as KILLED by the next start if left


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
        raise UserError(f"{name!r}: not a name of a folder inside {root}; use letters, digits, - and _")
    return Path(root) / name


HELD_ENV = "LIIF_MODEL_LOCK"  # set by a launcher holding the lock for the processes it starts (torchrun ranks)


class FolderLockedError(UserError):
    """Another live process trains into the same model folder."""


def lock_path(out_dir: str | Path) -> Path:
    """``<folder>.lock`` beside the folder, resolved: ``./models//liif/`` or a link to it lock the same file."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(f"{out_dir.name}.lock")


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"PID {info['pid']} on {info['host']} (started {info['started']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def model_folder_lock(out_dir: str | Path):
    """``with model_folder_lock("models/liif"):`` train into it; raises ``FolderLockedError`` naming the holder
    when a live process already holds it. A process started by a holder (``HELD_ENV`` names the same lock)
    shares the holder's lock instead of taking its own."""
    path = lock_path(out_dir)
    if os.environ.get(HELD_ENV) == str(path.resolve()):
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
            raise FolderLockedError(f"{out_dir} is being trained by {holder}; stop it or wait") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield path
        os.ftruncate(fd, 0)  # released: the next holder writes its own line
    finally:
        os.close(fd)  # closing the last descriptor releases the flock
