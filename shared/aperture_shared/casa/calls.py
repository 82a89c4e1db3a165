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

        return self._timed(name, parameters, lambda: getattr(casatasks, name)(**parameters))

    def image_tool(self, image: str, method: str, **parameters: Any) -> Any:
        """Open `image` with CASA's image tool, call ia.<method>(**parameters), close it; recorded as the
        three calls a person would type (ia.open, ia.<method>, ia.close), so casa_commands.log can re-run it."""
        import casatools  # type: ignore[import-untyped]

        tool = casatools.image()
        try:
            self._timed("ia.open", {"infile": image}, lambda: tool.open(image))
            return self._timed(f"ia.{method}", parameters, lambda: getattr(tool, method)(**parameters))
        finally:
            self._timed("ia.close", {}, tool.close)
            tool.done()

    def _timed(self, name: str, parameters: dict[str, Any], run: Any) -> Any:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        try:
            return run()
        finally:
            self.calls.append(
                CasaCall(task=name, parameters=_plain(parameters), started_at=started,
                         duration_s=round(time.monotonic() - t0, 3))
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
