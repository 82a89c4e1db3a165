"""CASA steps for the runner's tests; the child process imports them by name (tests/ is put on PYTHONPATH)."""

import os
import signal
import time

from aperture_shared.errors import BadInput


def version(arguments: dict, calls) -> dict:
    import casatools

    return {"casatools": casatools.version_string(), "echo": arguments}


def sleep(arguments: dict, calls) -> None:
    (__import__("pathlib").Path(arguments["pid_file"])).write_text(str(os.getpid()))
    time.sleep(arguments["seconds"])


def allocate(arguments: dict, calls) -> None:
    """Load casatools (as every real step does), then grow past the limit."""
    import casatools

    casatools.table()
    block = bytearray(arguments["mb"] * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page so it is resident
        block[i] = 1
    time.sleep(30)


def crash(arguments: dict, calls) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def refuse(arguments: dict, calls) -> None:
    raise BadInput("this is not a Measurement Set: give the path of an MS directory")


def environment(arguments: dict, calls) -> dict:
    return {name: os.environ.get(name) for name in arguments["names"]}


def describe_process(arguments: dict, calls) -> dict:
    """The process the step runs in, with a line in its CASA log and one on its output."""
    import casatasks

    casatasks.casalog.post(arguments["log_line"])
    print(arguments["print_line"], flush=True)
    return {"pid": os.getpid(), "cwd": os.getcwd(), "omp": os.environ.get("OMP_NUM_THREADS")}
