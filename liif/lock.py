"""One training per model folder: the trainer holds an ``flock`` on ``<folder>.lock`` beside it.

The lock file sits beside the folder, not inside it: ``models/<v>`` is a DVC output that DVC hashes
(``.dvcignore`` keeps ``models/*.lock`` out of the report stage's ``models`` dependency too). The
kernel releases an ``flock`` when its holder dies, however it dies, so a lock left by a killed training
is free again without anyone deciding that it is stale; the text in the file (PID, host, start time)
only names the holder in the refusal.
"""

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

HELD_ENV = "LIIF_MODEL_LOCK"  # set by a launcher holding the lock for the processes it starts (torchrun ranks)


class FolderLockedError(RuntimeError):
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
