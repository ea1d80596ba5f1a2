"""How a stage script ends: an expected error is one line and exit code 2, an unexpected one its traceback
and a line naming the stage and variant that failed.

Expected errors are the ones a user causes and can fix: every exception class the
library defines on purpose (``liif.*``: ``ParamsError``, ``RoleError``, ``ImageError``,
``CheckpointError``, ``SourceError``, a diverged run ...), a ``ValueError``, a missing
file, a full disk. Their messages already say what to change, so no traceback is printed.
"""

import errno
import sys
import traceback
from collections.abc import Callable
from pathlib import Path


def expected(error: BaseException) -> bool:
    """A user's mistake with a message that says what to change, rather than a bug."""
    if isinstance(error, ValueError | FileNotFoundError) or type(error).__module__.startswith("liif."):
        return True
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def stage_label(stage: str, argv: list[str]) -> str:
    """``train@liif`` from ``--config configs/liif.json`` (train, evaluate), or the first argument (configure)."""
    if "--config" in argv[:-1]:
        return f"{stage}@{Path(argv[argv.index('--config') + 1]).stem}"
    positional = [a for a in argv if not a.startswith("-")]
    return f"{stage}@{positional[0]}" if stage == "configure" and positional else stage


def run_stage(stage: str, main: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run a stage's ``main`` and turn what it raises into an exit code and at most one line of explanation."""
    label = stage_label(stage, sys.argv[1:] if argv is None else argv)
    try:
        return main()
    except Exception as e:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            where = f" writing {e.filename}" if e.filename else ""
            print(
                f"{label}: the disk is full{where}: free space and rerun (finished checkpoints are kept)",
                file=sys.stderr,
            )
            return 2
        if expected(e):
            print(f"{label}: {e}", file=sys.stderr)
            return 2
        traceback.print_exc()  # a bug to report, not a user's mistake: shown in full
        print(
            f"{label}: failed with the unexpected error above (a bug: please report it with this output)",
            file=sys.stderr,
        )
        return 1
