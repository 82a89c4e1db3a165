"""The serial baseline: the CASA task calls a system run recorded, replayed one after another in one
plain Python process, as a hand-written script of the same calls would run them.

    python serial_replay.py PLAN.json RESULT.json      (the bench runs it; see `prepare_replay`)

What is replayed: every casatasks call (and image-tool call, `ia.<method>`) the workers reported
(`casa_calls`, full parameters), in the order they started. The recorded paths name the workers' per-job
scratch directories; they are rewritten to a replay workspace that keeps the same per-job layout:
- what ingest unpacked from the package (`<job>/unpacked/...`) is unpacked there before the clock starts;
- what a job downloaded from storage (`<job>/input/...`) was written by an earlier call of the run, so it
  is linked (a symlink, made when the call comes, in no measurable time) to the newest path of the same
  name that an earlier replayed call created: the script uses the earlier output in place, where the
  system moves it through the object store.
What is not replayed: work done in the CASA processes without a task call (casatools reads and imager
sensitivity, the findcont dirty cubes gridded with ducc0, image statistics, unpacking the package), and
everything outside them. The bench reports those from the system run itself.
"""

import sys
import time
from pathlib import Path
from typing import Any

from aperture_contracts.events import CasaCall
from aperture_ingest.package import unpack_package
from pydantic import BaseModel

# Where a job's handler puts what it read from the submitted package, and what it downloaded.
PACKAGE_FOLDER = "unpacked"
DOWNLOAD_FOLDER = "input"
# Parameters that name what a task writes: after the call they must exist, or the replay is wrong.
OUTPUT_PARAMETERS = ("outputvis", "fitsimage", "caltable")


class ReplayCall(BaseModel):
    task: str
    parameters: dict[str, Any]
    recorded_s: float


class ReplayPlan(BaseModel):
    root: str  # the replay workspace: every rewritten path lies under it
    calls: list[ReplayCall]
    staged: list[str]  # what was laid out before the clock started


class ReplayedCall(BaseModel):
    task: str
    seconds: float
    recorded_s: float
    linked: list[str]  # inputs linked to earlier outputs before this call


class ReplayResult(BaseModel):
    import_s: float  # configuring CASA and importing casatools and casatasks, once
    calls: list[ReplayedCall]

    @property
    def calls_s(self) -> float:
        return sum(call.seconds for call in self.calls)


def prepare_replay(calls: list[CasaCall], scratch_root: Path, package: Path, root: Path) -> ReplayPlan:
    """Rewrite the recorded calls' paths from `scratch_root` to `root` and unpack the package where
    ingest unpacked it. Runs before the clock."""
    prefix = str(scratch_root) + "/"
    rewritten = [
        ReplayCall(task=call.task, parameters=_rewrite(call.parameters, prefix, str(root) + "/"),
                   recorded_s=call.duration_s)
        for call in calls
    ]
    staged: list[str] = []
    for path in _paths(rewritten, root):
        parts = path.relative_to(root).parts
        if len(parts) > 1 and parts[1] == PACKAGE_FOLDER:
            unpack_dir = root / parts[0] / PACKAGE_FOLDER
            if not unpack_dir.exists():
                unpack_package(package, unpack_dir)
                staged.append(str(unpack_dir))
    return ReplayPlan(root=str(root), calls=rewritten, staged=staged)


def _rewrite(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return new + value[len(old):] if value.startswith(old) else value
    if isinstance(value, list):
        return [_rewrite(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item, old, new) for key, item in value.items()}
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def _paths(calls: list[ReplayCall], root: Path) -> list[Path]:
    prefix = str(root) + "/"
    return [Path(text) for call in calls for text in _strings(call.parameters) if text.startswith(prefix)]


def _call_paths(call: ReplayCall, root: Path) -> list[Path]:
    return _paths([call], root)


def _link_downloads(call: ReplayCall, root: Path, created: list[Path]) -> list[str]:
    """Link each missing `<job>/input/...` path of the call to the newest earlier output of that name."""
    linked: list[str] = []
    for path in _call_paths(call, root):
        parts = path.relative_to(root).parts
        if len(parts) < 3 or parts[1] != DOWNLOAD_FOLDER or path.exists() or path.is_symlink():
            continue
        # The downloaded entry is the path below input/ named like an earlier output, such that the rest
        # of the path exists inside that output (a job may keep an MS in a folder of the same name).
        for depth in range(len(parts), 2, -1):
            entry = root.joinpath(*parts[:depth])
            rest = parts[depth:]
            source = next(
                (made for made in reversed(created) if made.name == entry.name and made.joinpath(*rest).exists()),
                None,
            )
            if source is not None:
                entry.parent.mkdir(parents=True, exist_ok=True)
                entry.symlink_to(source, target_is_directory=source.is_dir())
                linked.append(str(entry.relative_to(root)))
                break
        else:
            raise SystemExit(
                f"replay: {call.task} reads {path}, which no earlier call wrote and the package does not "
                "hold; the recorded calls do not describe this input"
            )
    return linked


def replay(plan: ReplayPlan) -> ReplayResult:
    """Run the plan's calls in this process. Returns per-call times (the bench times the process)."""
    started = time.monotonic()
    from aperture_shared.casa.config import configure_offline

    root = Path(plan.root)
    configure_offline(root / "casa.log")
    import casatasks  # type: ignore[import-untyped]
    import casatools  # type: ignore[import-untyped]

    import_s = time.monotonic() - started
    image_tool = casatools.image()  # for the recorded image-tool calls ("ia.<method>"), as a script has one
    created: list[Path] = []
    replayed: list[ReplayedCall] = []
    for call in plan.calls:
        paths = _call_paths(call, root)
        linked = _link_downloads(call, root, created)
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        folders = {path.parent for path in paths}
        before = {entry for folder in folders for entry in folder.iterdir()}
        t0 = time.monotonic()
        if call.task.startswith("ia."):
            returned = getattr(image_tool, call.task.removeprefix("ia."))(**call.parameters)
            if hasattr(returned, "done"):  # imageconcat returns a tool of its own
                returned.done()
        else:
            getattr(casatasks, call.task)(**call.parameters)
        seconds = time.monotonic() - t0
        for name in OUTPUT_PARAMETERS:
            output = call.parameters.get(name)
            if isinstance(output, str) and output and not Path(output).exists():
                raise SystemExit(f"replay: {call.task} did not write {output}; see {root / 'casa.log'}")
        created.extend(sorted({entry for folder in folders for entry in folder.iterdir()} - before))
        replayed.append(ReplayedCall(task=call.task, seconds=seconds, recorded_s=call.recorded_s, linked=linked))
    return ReplayResult(import_s=import_s, calls=replayed)


def main(plan_path: str, result_path: str) -> int:
    plan = ReplayPlan.model_validate_json(Path(plan_path).read_text())
    result = replay(plan)
    Path(result_path).write_text(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
