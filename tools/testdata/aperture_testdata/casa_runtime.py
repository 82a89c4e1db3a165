"""The one door to CASA in this package: offline configuration always happens before casatools loads.

Modules here import casatools through `casatools_module()` at call time, never at import time, so that
importing the package (e.g. to read a truth file) needs no CASA set-up.
"""

import warnings
from types import ModuleType

from aperture_shared.casa.config import configure_offline


def casatools_module() -> ModuleType:
    configure_offline()
    import casatools  # type: ignore[import-untyped]

    return casatools


def casatasks_module() -> ModuleType:
    configure_offline()
    # casatasks 6.7 has source that Python 3.11 warns about when it compiles it (`x is not ''`:
    # SyntaxWarning; "\*" in docstrings: DeprecationWarning), i.e. on every import where no bytecode
    # cache is written (PYTHONDONTWRITEBYTECODE). Under pytest's warnings-as-errors such a warning
    # becomes a SyntaxError and the import fails.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import casatasks  # type: ignore[import-untyped]

    return casatasks


def casa_version() -> str:
    return str(casatools_module().version_string())
