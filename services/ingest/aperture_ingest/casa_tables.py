"""Reading casacore tables with casatools so that a damaged table is a BadInput naming what could not be
read, not a bare CASA RuntimeError.

A damaged table usually opens fine and fails only when a column is read (a data file deleted or cut
short), so every read happens inside a guard. After the first error nothing more is read from the table:
a second access to a table whose storage manager has already failed can crash casacore.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from aperture_shared.errors import CorruptInput


class ReadGuard:
    """Turns CASA's RuntimeError, raised inside the block, into BadInput naming the owner and part."""

    def __init__(self, owner: str, part: str, owner_kind: str = "Measurement Set") -> None:
        self.owner = owner
        self.part = part
        self.owner_kind = owner_kind

    def __enter__(self) -> "ReadGuard":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any
    ) -> Literal[False]:
        if isinstance(error, RuntimeError):
            raise unreadable(self.owner, self.part, error, self.owner_kind) from error
        return False


def unreadable(owner: str, part: str, error: BaseException, owner_kind: str = "Measurement Set") -> CorruptInput:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return CorruptInput(
        f"{owner}: its {part} cannot be read; the {owner_kind} is incomplete or damaged "
        "(a table file missing or cut short, e.g. by an interrupted copy or download). "
        f"Make the {owner_kind} again (or download it again) and resubmit.",
        detail=reason,
    )


@contextmanager
def guarded_table(path: Path, owner: str, part: str, owner_kind: str = "Measurement Set") -> Iterator[Any]:
    """An open, read-only casatools table; a CASA error while it is open or in use becomes BadInput.

    owner: the name users know (the MS or calibration table); part: what `path` is within it."""
    import casatools  # type: ignore[import-untyped]

    table = casatools.table()
    try:
        with ReadGuard(owner, part, owner_kind):
            table.open(str(path), nomodify=True)
            yield table
    finally:
        table.close()


@contextmanager
def guarded_msmetadata(path: Path) -> Iterator[Any]:
    """An open msmetadata tool on the MS at `path`; CASA errors become BadInput."""
    import casatools

    metadata = casatools.msmetadata()
    try:
        with ReadGuard(path.name, "metadata (msmetadata)"):
            metadata.open(str(path))
            yield metadata
    finally:
        metadata.close()
