"""Point CASA at the offline `casadata` package. Call once at process start, before importing casatools.

casacore logs one SEVERE "Leap second table TAI_UTC seems out-of-date" per process: the table's date
stamp is older than 180 days while its contents are right. Log checks whitelist that line
(`KNOWN_HARMLESS_SEVERE`) rather than patching the installed data.
"""

import os
import tempfile
from pathlib import Path

KNOWN_HARMLESS_SEVERE = ("Leap second table TAI_UTC seems out-of-date",)

_configured = False


def configure_offline(log_file: Path | None = None) -> None:
    """Configure casaconfig for offline use; it must run before the first `import casatools`.

    log_file: where CASA writes its log (the worker's runner gives each job its own). Without one the
    log goes to a per-process file in the temp directory, never into the current directory.
    """
    global _configured
    if _configured:
        return
    import casadata  # type: ignore[import-untyped]
    from casaconfig import config  # type: ignore[import-untyped]

    data_path = casadata.datapath
    config.measurespath = data_path
    config.datapath = [data_path]
    config.measures_auto_update = False
    config.data_auto_update = False
    config.nologger = True
    config.nogui = True
    config.telemetry_enabled = False
    config.crashreporter_enabled = False
    if log_file is None:
        log_file = Path(tempfile.gettempdir()) / f"aperture-casa-{os.getpid()}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    config.logfile = str(log_file)
    _configured = True
