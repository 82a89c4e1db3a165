"""`aperture-make-mous`: generate a small ALMA-like test MOUS (real CASA, offline)."""

import argparse
import sys
from pathlib import Path

from aperture_shared.casa.config import configure_offline

from aperture_testdata.casa_runtime import casatasks_module
from aperture_testdata.generator import DEFAULT_MOUS_UID, DEFAULT_MS_NAME, check_options, generate_mous
from aperture_testdata.scenarios import SCENARIOS


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aperture-make-mous",
        description="Simulate an ALMA-like MOUS with CASA: an uncalibrated MS, the calibration tables that "
        "restore it, aperture-restore.json and truth.json (what the data contain).",
    )
    parser.add_argument("outdir", type=Path, nargs="?", help="output directory (created if missing)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same data")
    parser.add_argument("--scenario", default="default", help=f"one of: {', '.join(sorted(SCENARIOS))}")
    parser.add_argument("--name", default=DEFAULT_MS_NAME, help="MS name (without .ms)")
    parser.add_argument("--mous-uid", default=DEFAULT_MOUS_UID, help="written to aperture-restore.json")
    parser.add_argument("--package", type=Path, help="also write the MS package here (.tar, .tar.gz or .tgz)")
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="no gain errors and no tables: an MOUS delivered already calibrated",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier MOUS in OUTDIR")
    parser.add_argument("--casa-log", type=Path, help="CASA's log file (default: one in the temp directory)")
    parser.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    arguments = parser.parse_args(argv)
    if arguments.outdir is None and not arguments.list_scenarios:
        parser.error("OUTDIR is required")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    if arguments.list_scenarios:
        for name, factory in sorted(SCENARIOS.items()):
            print(f"{name}: {factory().description}")
        return 0
    try:
        check_options(
            arguments.scenario, arguments.seed, arguments.name, arguments.mous_uid, arguments.package
        )
    except ValueError as error:
        return _refuse(error)
    # Before anything imports casatools (nothing here does at import time).
    configure_offline(arguments.casa_log)
    # The simulator's chatter (hundreds of lines) goes to the CASA log file only; the console gets the
    # summary below. casacore still prints SEVERE lines, e.g. the harmless leap-second warning.
    casalog = casatasks_module().casalog
    casalog.showconsole(False)
    try:
        result = generate_mous(
            arguments.outdir,
            seed=arguments.seed,
            scenario=arguments.scenario,
            name=arguments.name,
            mous_uid=arguments.mous_uid,
            calibrated=arguments.no_calibration,
            package=arguments.package,
            overwrite=arguments.overwrite,
        )
    except FileExistsError as error:
        return _refuse(error)
    print(f"measurement set  {result.ms}")
    for table in result.calibration_tables:
        print(f"calibration      {table}")
    print(f"restore manifest {result.manifest}")
    print(f"truth            {result.truth_file}")
    if result.package is not None:
        print(f"package          {result.package}")
    if result.truth.calibration is not None:
        check = result.truth.calibration
        print(
            f"phase scatter of {check.check_field}: {check.phase_scatter_before_deg:.1f} deg raw, "
            f"{check.phase_scatter_after_deg:.2f} deg after applycal"
        )
    print(f"CASA log         {casalog.logfile()}")
    print(f"done in {result.seconds:.1f} s")
    return 0


def _refuse(error: Exception) -> int:
    print(f"aperture-make-mous: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
