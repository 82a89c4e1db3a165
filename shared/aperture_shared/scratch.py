"""Per-job scratch directories: always fresh, always removed, so a re-run never sees a previous run's files."""

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_OWNER = re.compile(r"^pid(\d+)-")


@contextmanager
def job_scratch(root: Path, job_id: str) -> Iterator[Path]:
    """A new empty directory for one job attempt, removed when the block ends, however it ends."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"pid{os.getpid()}-{job_id}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_orphaned_scratch(root: Path) -> list[Path]:
    """Remove scratch left by workers that were killed (their pid no longer runs). Called at start-up."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        match = _OWNER.match(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
