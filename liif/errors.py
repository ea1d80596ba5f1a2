"""The one error rule: a user's mistake is a ``UserError`` (one line naming the key or file and the fix, exit 2);
anything else is a bug and keeps its traceback, followed by a line naming the stage and variant that failed.

A ``UserError`` is raised where the mistake is found: a bad value of params.yaml (``ParamsError``), a bad
image, checkpoint, archive or download, a model folder another training holds, a run that diverged. A full
disk is the one error of the system treated the same way (free space and rerun). A ``ValueError`` or
``KeyError`` from inside the library is a bug, however it reads, and is shown in full.
"""

import errno
import sys
import traceback
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix; its message is one line that names the key or file and says what to change."""


def expected(error: BaseException) -> bool:
    """A user's mistake (or a full disk) with a message that says what to change, rather than a bug."""
    return isinstance(error, UserError) or full_disk(error)


def full_disk(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def explain(error: BaseException, *, kept: str = "") -> str | None:
    """The one line that shows an expected error (``kept``: what a rerun keeps after a full disk), or None for a
    bug, which is shown in full instead."""
    if full_disk(error):
        where = f" writing {error.filename}" if error.filename else ""
        return f"the disk is full{where}: free space and rerun{f' ({kept})' if kept else ''}"
    return str(error) if isinstance(error, UserError) else None


def stage_label(stage: str, argv: list[str]) -> str:
    """``train@liif`` from ``--config configs/liif.json`` (train, evaluate), or the first argument (configure)."""
    if "--config" in argv[:-1]:
        return f"{stage}@{Path(argv[argv.index('--config') + 1]).stem}"
    positional = [a for a in argv if not a.startswith("-")]
    return f"{stage}@{positional[0]}" if stage == "configure" and positional else stage


def run_stage(stage: str, main: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run a stage's ``main`` and turn what it raises into an exit code and at most one line of explanation:
    2 and the line for an expected error, 1 and the traceback followed by a line naming the stage for a bug."""
    label = stage_label(stage, sys.argv[1:] if argv is None else argv)
    try:
        return main()
    except Exception as e:  # sorted by ``explain``: only a user's mistake or a full disk is one line
        line = explain(e, kept="finished checkpoints are kept")
        if line is not None:
            print(f"{label}: {line}", file=sys.stderr)
            return 2
        return report_bug(label)


def report_bug(label: str) -> int:
    """Show the error being handled in full, then a line naming what failed (``label``); returns exit status 1."""
    traceback.print_exc()
    print(
        f"{label}: failed with the unexpected error above (a bug: please report it with this output)", file=sys.stderr
    )
    return 1
