"""Scale-out benchmark: one multi-spw MOUS through the system with 1 and with 2 workers per fan-out stage
(findcont and imaging; ingest and calibration, one job per MOUS, have one worker each), and
through a plain serial script of the same CASA task calls in one process; wall-time ratios and where the
system's time goes outside CASA task calls.

    .venv/bin/python tools/bench/scaleout.py [--workers 1 2] [--seed 7] [--serial-threads N]

Needs the servers of `make infra` (RabbitMQ, S3). Each system run gets its own coordinator (a fresh
SQLite database on a free port), bucket and scratch root, so runs never share state; the CASA calls each
job made are read from that database afterwards. The serial script replays the first run's recorded
task calls (see serial_replay.py for what that does and does not include).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from aperture_testdata.scenarios import get_scenario
from serial_replay import ReplayResult, prepare_replay
from system_run import BIN, SystemRun, run_system
from time_accounting import TimeAccount, account

TARGET_SPEEDUP_RATIO = 0.6  # 2 workers' wall / the serial script's, at most
TARGET_OUTSIDE_FRACTION = 0.10  # of the system's time outside CASA task calls, at most


def run_serial(run: SystemRun, package: Path, workdir: Path, threads: int | None) -> tuple[float, ReplayResult]:
    """Replay `run`'s task calls in a fresh process; returns that process's wall time and its figures."""
    root = workdir / f"serial-{threads or 'all'}-threads"
    root.mkdir()
    plan = prepare_replay(run.calls_in_order(), run.scratch_root, package, root)
    plan_path, result_path = root / "plan.json", root / "result.json"
    plan_path.write_text(plan.model_dump_json())
    env = dict(os.environ)
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    started = time.monotonic()
    log = root / "output.log"
    with log.open("wb") as output:
        replayed = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("serial_replay.py")), str(plan_path), str(result_path)],
            env=env, stdout=output, stderr=subprocess.STDOUT, check=False,
        )
    if replayed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"the serial replay failed (exit {replayed.returncode}); the end of {log}:\n{tail}")
    wall = time.monotonic() - started
    return wall, ReplayResult.model_validate_json(result_path.read_text())


def _seconds(value: float | None, unit: str = "") -> str:
    return "n/a" + " " * len(unit) if value is None else f"{value:.1f}{unit}"


def _share(part: float | None, whole: float) -> str:
    return "" if part is None else f"{100 * part / whole:.0f} %"


def print_accounts(runs: list[SystemRun], accounts: list[TimeAccount]) -> None:
    header = "".join(f"{f'{run.workers} worker(s) per stage':>26}" for run in runs)
    print(f"{'':52}{header}")
    rows: list[tuple[str, list[float | None]]] = [
        ("MOUS wall (submission to the last job's end)", [a.mous_wall_s for a in accounts]),
        ("imaging phase wall", [a.imaging_wall_s for a in accounts]),
        ("jobs' time, summed over jobs", [a.jobs_s for a in accounts]),
        ("  CASA task calls", [a.task_calls_s for a in accounts]),
        ("  CASA processes: other work (tools, ducc0, stats)", [a.non_task_s for a in accounts]),
        ("  CASA processes: start and import", [a.startup_s for a in accounts]),
        ("  workers outside CASA (transfers, events, logs)", [a.worker_s for a in accounts]),
        ("no job running (upload, dispatch, queueing)", [a.idle_s for a in accounts]),
    ]
    for label, values in rows:
        cells = "".join(
            f"{_seconds(value, ' s'):>18} {_share(value, a.accounted_s):>7}" if label.startswith(("  ", "no "))
            else f"{_seconds(value, ' s'):>18} {'':>7}"
            for value, a in zip(values, accounts, strict=True)
        )
        print(f"{label:52}{cells}")
    print(f"{'outside CASA task calls (share of jobs + idle)':52}"
          + "".join(f"{100 * a.outside_task_calls:>24.0f} %" for a in accounts))
    print(f"{'  of which no computation (start, workers, idle)':52}"
          + "".join(f"{_share(a.overhead_s, a.accounted_s) or 'n/a':>26}" for a in accounts))
    for run, a in zip(runs, accounts, strict=True):
        if a.steps_missing:
            print(f"  note: {a.steps_missing} job(s) of the {run.workers}-worker run had no step figures "
                  "in the worker logs; their CASA process time counts as worker time")


def print_jobs(run: SystemRun) -> None:
    """Per kind of job: where its time goes (the first run)."""
    groups: dict[str, list] = defaultdict(list)
    for job in run.jobs:
        groups[f"{job.stage} {job.kind}".strip()].append(job)
    print(f"  {'job kind':22}{'jobs':>5}{'time s':>9}{'tasks s':>9}{'start s':>9}{'other s':>9}{'worker s':>10}")
    for name, jobs in groups.items():
        steps = [step for job in jobs for step in job.steps]
        wall = sum(job.wall_s for job in jobs)
        tasks = sum(job.task_s for job in jobs)
        casa = sum(step.duration_s for step in steps)
        starts = [step.startup_s for step in steps]
        start = sum(s for s in starts if s is not None) if None not in starts else None
        other = casa - tasks - start if start is not None else None
        print(f"  {name:22}{len(jobs):>5}{wall:>9.1f}{tasks:>9.1f}{_seconds(start):>9}{_seconds(other):>9}"
              f"{wall - casa:>10.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="findcont and imaging workers per run")
    parser.add_argument("--scenario", default="four_spw", help="the generator's scenario (default: four_spw)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serial-threads", type=int, nargs="+", default=[0, 1],
                        help="OpenMP threads of the serial script, one replay each (0: CASA's own choice, "
                        "every core); the fastest replay is the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, databases)")
    args = parser.parse_args()
    # Stopped from outside: leave through the `finally`s, so that the runs' servers and workers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start"
          + (" (busy: expect noisy figures)" if load > 0.5 else ""))
    workdir = Path(tempfile.mkdtemp(prefix="aperture-bench-"))
    if args.keep:
        print(f"working directory (kept): {workdir}")
    try:
        package = workdir / "package.tar"
        with (workdir / "make-mous.log").open("wb") as output:  # CASA's simulator is chatty
            subprocess.run(
                [str(BIN / "aperture-make-mous"), "--seed", str(args.seed), "--scenario", args.scenario,
                 "--package", str(package),
                 "--casa-log", str(workdir / "make-mous.casa.log"), str(workdir / "mous")],
                stdout=output, stderr=subprocess.STDOUT, check=True,
            )
        runs = [run_system(package, workers, workdir) for workers in args.workers]
        accounts = [account(run) for run in runs]
        serials = {threads: run_serial(runs[0], package, workdir, threads or None) for threads in args.serial_threads}
        non_task = accounts[0].non_task_s
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    calls = [len(run.calls_in_order()) for run in runs]
    print(f"MOUS: scenario {args.scenario}, seed {args.seed} ({get_scenario(args.scenario).description}); "
          f"{len(runs[0].jobs)} jobs, {calls[0]} CASA task calls"
          + ("" if len(set(calls)) == 1 else f" (the runs recorded {calls} calls: not the same work!)"))
    print("\nsystem (one CASA thread per worker; times in s, shares of the jobs' time plus idle time):")
    print_accounts(runs, accounts)
    print(f"\nper kind of job, {runs[0].workers}-worker run "
          "(start = process start and CASA import; other = non-task work in CASA):")
    print_jobs(runs[0])

    print(f"\nserial script: the {calls[0]} recorded task calls replayed in one process, one replay per thread "
          "count; the package unpacked before the clock, each download linked to the earlier output it was")
    for threads, (wall, serial) in serials.items():
        label = "CASA's choice (all cores)" if threads == 0 else str(threads)
        print(f"  OpenMP threads {label}: task calls {serial.calls_s:.1f} s + process start and CASA import "
              f"{wall - serial.calls_s:.1f} s = {wall:.1f} s")
    serial_threads, (serial_wall, _) = min(serials.items(), key=lambda item: item[1][0])
    print(f"  not replayed: the CASA steps' work without task calls (casatools, ducc0 dirty cubes, statistics, "
          f"unpacking): {_seconds(non_task)} s in the {runs[0].workers}-worker run")
    estimate = serial_wall + non_task if non_task is not None else None
    threads_label = "CASA's choice" if serial_threads == 0 else serial_threads
    print(f"  baseline: the fastest replay ({serial_wall:.1f} s, threads {threads_label})"
          + (f"; with that non-task work added, a serial estimate of {estimate:.1f} s" if estimate else ""))

    print("\nratios (wall time):")
    by_workers = {run.workers: a for run, a in zip(runs, accounts, strict=True)}
    for workers, a in by_workers.items():
        versus = f"{a.mous_wall_s / serial_wall:.2f}"
        if estimate is not None:
            versus += f"   (vs serial incl. non-task work {estimate:.1f} s: {a.mous_wall_s / estimate:.2f})"
        print(f"  {workers} worker(s) per stage / serial script: {versus}")
    if 1 in by_workers and 2 in by_workers:
        print(f"  1 worker / 2 workers: MOUS {by_workers[1].mous_wall_s / by_workers[2].mous_wall_s:.2f}x, "
              f"imaging phase {by_workers[1].imaging_wall_s / by_workers[2].imaging_wall_s:.2f}x")
    if 2 in by_workers:
        two = by_workers[2]
        ratio = two.mous_wall_s / serial_wall
        print(f"targets: 2 workers <= {TARGET_SPEEDUP_RATIO} x serial: {ratio:.2f} "
              f"({'met' if ratio <= TARGET_SPEEDUP_RATIO else 'not met'}); outside CASA task calls <= "
              f"{100 * TARGET_OUTSIDE_FRACTION:.0f} %: {100 * two.outside_task_calls:.0f} % "
              f"({'met' if two.outside_task_calls <= TARGET_OUTSIDE_FRACTION else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
