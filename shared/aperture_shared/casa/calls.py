"""CASA task calls, recorded with their full parameters (they become casa_commands.log).

Code that runs inside the CASA child process calls tasks through `CasaCallLog.task` so that every call
is recorded the same way; the runner returns the records with the job's result.
"""

import time
from datetime import UTC, datetime
from typing import Any

from aperture_contracts.events import CasaCall


class CasaCallLog:
    def __init__(self) -> None:
        self.calls: list[CasaCall] = []

    def task(self, name: str, **parameters: Any) -> Any:
        """Run casatasks.<name>(**parameters) and record it."""
        import casatasks  # type: ignore[import-untyped]

        started = datetime.now(UTC)
        t0 = time.monotonic()
        try:
            return getattr(casatasks, name)(**parameters)
        finally:
            self.calls.append(
                CasaCall(
                    task=name,
                    parameters=_plain(parameters),
                    started_at=started,
                    duration_s=round(time.monotonic() - t0, 3),
                )
            )


def _plain(value: Any) -> Any:
    """Parameters as JSON-able values (numpy scalars and arrays become Python ones)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
