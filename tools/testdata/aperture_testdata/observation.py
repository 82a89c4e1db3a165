"""The observation: when it happens, and the simulator run that lays out the MS and predicts the sky."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from aperture_testdata.array import Antenna
from aperture_testdata.casa_runtime import casatools_module
from aperture_testdata.scenarios import INTENT_TARGET, FieldPlan, Scenario

SECONDS_PER_DAY = 86_400.0
SIDEREAL_PER_SOLAR = 1.002737909350795
MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


@dataclass(frozen=True)
class PlannedScan:
    field: str
    intents: tuple[str, ...]
    offset_s: float  # from the observation's start
    duration_s: float


@dataclass(frozen=True)
class Schedule:
    start_mjd_s: float
    scans: tuple[PlannedScan, ...]

    @property
    def middle_mjd_s(self) -> float:
        last = self.scans[-1]
        return self.start_mjd_s + (last.offset_s + last.duration_s) / 2


def mjd_seconds(moment: datetime) -> float:
    return (moment - MJD_EPOCH).total_seconds()


def utc_from_mjd_seconds(mjd_s: float) -> datetime:
    return MJD_EPOCH + timedelta(seconds=mjd_s)


def plan_schedule(scenario: Scenario) -> Schedule:
    """Start so that the (first) target transits in the middle of the observation, where the array's
    uv coverage is best and no antenna is shadowed; whole seconds, so runs agree to the bit."""
    target = scenario.fields_with_intent(INTENT_TARGET)[0]
    midnight_mjd_s = mjd_seconds(datetime.combine(scenario.observation_date, time(0), tzinfo=UTC))
    transit_mjd_s = _transit_mjd_s(target, midnight_mjd_s)
    start = round(transit_mjd_s - scenario.duration_s / 2)
    scans, offset = [], 0.0
    for scan in scenario.scans:
        scans.append(PlannedScan(scan.field, scenario.field(scan.field).intents, offset, scan.duration_s))
        offset += scan.duration_s + scenario.slew_s
    return Schedule(start_mjd_s=float(start), scans=tuple(scans))


def _transit_mjd_s(field: FieldPlan, day_start_mjd_s: float) -> float:
    """The first time after `day_start` at which the field crosses ALMA's meridian (LAST = RA)."""
    tools = casatools_module()
    me, qa = tools.measures(), tools.quanta()
    try:
        me.doframe(me.observatory("ALMA"))
        epoch = me.epoch("UTC", qa.quantity(day_start_mjd_s, "s"))
        me.doframe(epoch)
        last_days = float(me.measure(epoch, "LAST")["m0"]["value"]) % 1.0
        ra_turns = float(qa.convert(qa.quantity(field.ra), "deg")["value"]) / 360.0 % 1.0
        return day_start_mjd_s + ((ra_turns - last_days) % 1.0) * SECONDS_PER_DAY / SIDEREAL_PER_SOLAR
    finally:
        me.done()


def lsrk_over_topo(field: FieldPlan, mjd_s: float) -> float:
    """nu_LSRK / nu_TOPO for a fixed frequency towards the field, seen from ALMA at that moment."""
    tools = casatools_module()
    me, qa = tools.measures(), tools.quanta()
    try:
        me.doframe(me.observatory("ALMA"))
        me.doframe(me.epoch("UTC", qa.quantity(mjd_s, "s")))
        me.doframe(me.direction("J2000", field.ra, field.dec))
        topo_hz = 230.0e9
        lsrk = me.measure(me.frequency("TOPO", qa.quantity(topo_hz, "Hz")), "LSRK")
        return float(lsrk["m0"]["value"]) / topo_hz
    finally:
        me.done()


def simulate(
    scenario: Scenario,
    antennas: list[Antenna],
    schedule: Schedule,
    component_lists: dict[str, Path],
    ms: Path,
) -> None:
    """Lay out the MS (array, spws, fields, scans with intents) and write the model sky into DATA.

    The simulator opens a scan per `observe` call, i.e. one per spw; `ms_layout.merge_spw_scans` later
    joins the spws observed together into one scan as ALMA writes them. Its TIME stamps come out 37 s
    (TAI - UTC) after the UTC reference time; the truth file therefore takes times from the MS.
    """
    tools = casatools_module()
    sm, me, qa = tools.simulator(), tools.measures(), tools.quanta()
    try:
        sm.open(str(ms))
        sm.setconfig(
            telescopename="ALMA",
            x=[a.east_m for a in antennas],
            y=[a.north_m for a in antennas],
            z=[a.up_m for a in antennas],
            dishdiameter=[a.diameter_m for a in antennas],
            mount=["ALT-AZ"] * len(antennas),
            antname=[a.name for a in antennas],
            padname=[a.pad for a in antennas],
            coordsystem="local",
            referencelocation=me.observatory("ALMA"),
        )
        for spw in scenario.spws:
            sm.setspwindow(
                spwname=spw.name,
                freq=f"{spw.first_channel_hz}Hz",
                deltafreq=f"{spw.channel_width_hz}Hz",
                freqresolution=f"{spw.channel_width_hz}Hz",
                refcode="TOPO",
                nchannels=spw.nchan,
                stokes="XX YY",
            )
        sm.setfeed(mode="perfect X Y")
        for field in scenario.fields:
            sm.setfield(sourcename=field.name, sourcedirection=me.direction("J2000", field.ra, field.dec))
        sm.setlimits(shadowlimit=0.001, elevationlimit="10deg")
        sm.setauto(autocorrwt=0.0)
        sm.settimes(
            integrationtime=f"{scenario.integration_s}s",
            usehourangle=False,
            referencetime=me.epoch("UTC", qa.quantity(schedule.start_mjd_s, "s")),
        )
        for scan in schedule.scans:
            for spw in scenario.spws:
                sm.observe(
                    sourcename=scan.field,
                    spwname=spw.name,
                    starttime=f"{scan.offset_s}s",
                    stoptime=f"{scan.offset_s + scan.duration_s}s",
                    state_obs_mode=",".join(scan.intents),
                    observer="aperture",
                    project=scenario.project_code,
                )
        all_spws = list(range(len(scenario.spws)))
        for field_id, field in enumerate(scenario.fields):
            # One field at a time: a component list predicted into every field would put the calibrators'
            # janskys into the target's visibilities (no primary beam attenuates them).
            sm.setdata(spwid=all_spws, fieldid=[field_id])
            sm.predict(complist=str(component_lists[field.name]), incremental=False)
    finally:
        sm.done()
        me.done()
