"""Fake stage workers for coordinator benchmarks: what each stage's worker would report for a job message,
at once and without doing the work.

The coordinator's cost per event depends on what the events carry: it stores every result (job records
are JSON in the jobs table), records every output as an object row, and builds later job messages from
the results (an imaging job's from findcont's, the export's from every job's record). So these events are
shaped and sized like those of a real run, as measured on the demo MOUS's database (var/aperture.db, real
CASA): an image result carries ~27 CASA calls (~10 kB of JSON) and 5 FITS outputs, a target's aggregate
continuum previews its HiPS (~35 files), a footprint its ObsCore record, the export its weblog pages.
Ingest reports the observation of `MousShape` (science targets observed in every science spw), so the
planner fans the run out as it would for real data of that shape.

Everything is built from the job message, as a worker would: nothing is shared with the coordinator.
"""

import hashlib
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aperture_contracts.continuum import ContinuumCase, ContinuumRanges, FrequencyRange
from aperture_contracts.enums import ImagingKind, Stage
from aperture_contracts.events import (
    CalibrationMode,
    CalibrationResult,
    CasaCall,
    FindcontResult,
    ImagingResult,
    IngestResult,
    JobStarted,
    JobSucceeded,
    StageResult,
)
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import Beam, CubeChunkImage, ImageProduct
from aperture_contracts.jobs import (
    CalibrationJob,
    ExportJob,
    FindcontJob,
    FootprintJob,
    ImagingJob,
    IngestJob,
    JobEnvelope,
    PreviewsJob,
)
from aperture_contracts.metadata import AntennaInfo, FieldInfo, MeasurementSetInfo, MousMetadata, SpectralWindow
from aperture_contracts.obscore import DataProductType, ObsCoreRecord
from aperture_contracts.products import (
    ExportResult,
    FootprintResult,
    HipsProduct,
    PreviewFile,
    PreviewRole,
    PreviewsResult,
)
from aperture_contracts.qa import QAMetric, QAScore
from aperture_contracts.storage import ObjectRef

SOFTWARE_VERSION = "aperture 0.1.0 (fake worker)"
FITS = "application/fits"
PNG = "image/png"
SPW_BANDWIDTH_HZ = 1.875e9
FIRST_SPW_HZ = 224.0e9  # band 6, spws 2 GHz apart
ANTENNAS = 43  # a typical 12-m array configuration
FITS_PREVIEWS = (PreviewRole.MOMENT0, PreviewRole.PEAK)  # the moment maps; the other previews are PNGs
HIPS_FILES = 34  # a small image's HiPS to order 3 plus its viewer page, as the demo MOUS's

# What a stage's job takes on real data of modest size (seconds): recorded, never waited for.
DURATION_S = {
    Stage.INGEST: 900.0, Stage.CALIBRATION: 3600.0, Stage.FINDCONT: 300.0, Stage.PREVIEWS: 60.0,
    Stage.FOOTPRINT: 30.0, Stage.EXPORT: 120.0,
}
IMAGING_DURATION_S = {
    ImagingKind.CONTSUB: 600.0, ImagingKind.MFS: 1200.0, ImagingKind.CONT: 2400.0, ImagingKind.CUBE: 7200.0,
    ImagingKind.CUBE_CHUNK: 1800.0,
}

# The parameters a CASA call records, as the workers record them (names as CASA's; values plausible).
TCLEAN_PARAMETERS: dict[str, object] = {
    "vis": ["uid___A002_X1_X2.ms"], "field": "", "spw": "", "imagename": "", "specmode": "mfs",
    "imsize": [216, 216], "cell": "0.21arcsec", "phasecenter": "", "stokes": "I", "nchan": -1, "start": "",
    "width": "", "outframe": "LSRK", "restfreq": [], "gridder": "standard", "deconvolver": "hogbom",
    "weighting": "briggs", "robust": 0.5, "niter": 10000, "threshold": "0.41mJy", "usemask": "auto-multithresh",
    "sidelobethreshold": 2.0, "noisethreshold": 4.25, "lownoisethreshold": 1.5, "minbeamfrac": 0.3,
    "growiterations": 75, "negativethreshold": 0.0, "pblimit": 0.2, "pbcor": True, "restoringbeam": "common",
    "interactive": 0, "savemodel": "none", "calcpsf": True, "calcres": True, "parallel": False,
    "fastnoise": True, "restart": True,
}
IMHEAD_PARAMETERS: dict[str, object] = {"imagename": "", "mode": "get", "hdkey": "beammajor", "hdvalue": ""}
EXPORTFITS_PARAMETERS: dict[str, object] = {
    "imagename": "", "fitsimage": "", "velocity": False, "optical": False, "bitpix": -32, "minpix": 0,
    "maxpix": -1, "overwrite": True, "dropstokes": False, "stokeslast": True,
}


@dataclass(frozen=True)
class MousShape:
    """The observation every generated MOUS has: `targets` science targets, each observed in every science
    spw, one spw per entry of `spw_channels` with that many native channels (more than the coordinator's
    cube_chunk_channels: the cube is imaged in chunks)."""

    targets: int
    spw_channels: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.targets < 1 or not self.spw_channels or min(self.spw_channels) < 1:
            raise ValueError("a MOUS shape needs at least one target and one spw of at least one channel")

    @property
    def spw_ids(self) -> list[int]:
        return [17 + 2 * index for index in range(len(self.spw_channels))]  # ALMA numbers its science spws so

    def describe(self) -> str:
        return f"{self.targets} target(s) x {len(self.spw_channels)} spws of {list(self.spw_channels)} channels"

    def metadata(self, mous_id: str) -> MousMetadata:
        windows = [_spectral_window(spw_id, channels) for spw_id, channels in zip(self.spw_ids, self.spw_channels,
                                                                                  strict=True)]
        fields = [
            FieldInfo(
                field_id=index + 2, name=f"Target_{index + 1}", ra_deg=53.1 + 0.7 * index, dec_deg=-27.8 + 0.3 * index,
                intents=["OBSERVE_TARGET#ON_SOURCE"], is_science_target=True, spw_ids=self.spw_ids,
            )
            for index in range(self.targets)
        ]
        calibrators = [
            FieldInfo(field_id=0, name="J0423-0120", ra_deg=65.8, dec_deg=-1.3, is_science_target=False,
                      intents=["CALIBRATE_BANDPASS#ON_SOURCE", "CALIBRATE_FLUX#ON_SOURCE"], spw_ids=self.spw_ids),
            FieldInfo(field_id=1, name="J0348-2749", ra_deg=57.2, dec_deg=-27.8, is_science_target=False,
                      intents=["CALIBRATE_PHASE#ON_SOURCE"], spw_ids=self.spw_ids),
        ]
        ms = MeasurementSetInfo(
            name=f"{mous_key(mous_id)}.ms", observatory="ALMA", time_start=datetime(2023, 11, 2, 3, 10, tzinfo=UTC),
            time_end=datetime(2023, 11, 2, 4, 25, tzinfo=UTC), exposure_s=2419.2, num_rows=1_863_330,
            num_antennas=ANTENNAS, num_baselines=ANTENNAS * (ANTENNAS - 1) // 2,
            antennas=[
                AntennaInfo(antenna_id=index, name=f"DA{41 + index}", station=f"A{index + 1:03d}", diameter_m=12.0)
                for index in range(ANTENNAS)
            ],
            fields=[*calibrators, *fields], spectral_windows=windows, correlations=["XX", "YY"],
            intents=sorted({intent for field in [*calibrators, *fields] for intent in field.intents}),
            flagged_fraction=0.07, data_columns=["DATA"], has_calibrator_intents=True,
        )
        return MousMetadata(
            measurement_sets=[ms], science_targets=[field.name for field in fields], science_spw_ids=self.spw_ids,
            representative_spw=None, calibrated=False,
        )


def _spectral_window(spw_id: int, channels: int) -> SpectralWindow:
    low = FIRST_SPW_HZ + (spw_id - 17) * 1.0e9
    width = SPW_BANDWIDTH_HZ / channels
    return SpectralWindow(
        spw_id=spw_id, name=f"X0#ALMA_RB_06#BB_{(spw_id - 17) // 2 + 1}#SW-01#FULL_RES", num_channels=channels,
        ref_frequency_hz=low + width / 2, centre_frequency_hz=low + SPW_BANDWIDTH_HZ / 2,
        bandwidth_hz=SPW_BANDWIDTH_HZ, channel_width_hz=width, min_frequency_hz=low,
        max_frequency_hz=low + SPW_BANDWIDTH_HZ, frame="TOPO", correlations=["XX", "YY"],
    )


@dataclass(frozen=True)
class Outcome:
    """What a handler returns to the worker runtime (as aperture_shared.worker's JobOutcome)."""

    result: StageResult
    outputs: list[ObjectRef]
    casa_calls: list[tuple[str, dict[str, object]]]
    qa: list[QAScore]
    log: bool = True  # whether the job ran CASA and so stored its log


class FakeWorkers:
    """Answers a job message with the JobStarted and JobSucceeded a real worker of its stage would send."""

    def __init__(self, shape: MousShape) -> None:
        self.shape = shape

    def answer(self, job: JobEnvelope, at: datetime) -> tuple[JobStarted, JobSucceeded]:
        outcome = self._outcome(job, at)
        worker = f"{job.stage.value}-bench:{1 + zlib.crc32(job.job_id.encode()) % 8}"
        envelope = {"mous_id": job.mous_id, "job_id": job.job_id, "attempt": job.attempt, "stage": job.stage,
                    "worker": worker}
        duration = _duration(job)
        log = _ref(f"{job.output_prefix}logs/attempt-{job.attempt}.casa.log", 48_000, "text/plain")
        calls = [
            CasaCall(task=task, parameters=parameters, started_at=at, duration_s=round(duration / 40, 3))
            for task, parameters in outcome.casa_calls
        ]
        return (
            JobStarted(**envelope, at=at - timedelta(seconds=duration)),  # type: ignore[arg-type]
            JobSucceeded(
                **envelope, at=at, duration_s=duration, outputs=outcome.outputs,  # type: ignore[arg-type]
                result=outcome.result, qa=outcome.qa, casa_calls=calls, log=log if outcome.log else None,
                peak_memory_mb=2600.0 if outcome.casa_calls else None, software_version=SOFTWARE_VERSION,
            ),
        )

    def _outcome(self, job: JobEnvelope, at: datetime) -> Outcome:
        if isinstance(job, IngestJob):
            return self._ingest(job)
        if isinstance(job, CalibrationJob):
            return _calibration(job)
        if isinstance(job, FindcontJob):
            return _findcont(job)
        if isinstance(job, ImagingJob):
            return _imaging(job)
        if isinstance(job, PreviewsJob):
            return _previews(job)
        if isinstance(job, FootprintJob):
            return _footprint(job)
        if isinstance(job, ExportJob):
            return _export(job, at)
        raise TypeError(f"no fake worker for {type(job).__name__}")

    def _ingest(self, job: IngestJob) -> Outcome:
        ms = _ref(f"{job.output_prefix}{mous_key(job.mous_id)}.ms.tar", 31_000_000_000)
        report = _ref(f"{job.products_prefix}ingest-report.json", 9_500, "application/json")
        return Outcome(
            result=IngestResult(
                metadata=self.shape.metadata(job.mous_id), measurement_sets=[ms], report=report,
                restored_tables=["uid___A002_X1_X2.ms.flagversions", "uid___A002_X1_X2.ms.hifa_timegaincal.g"],
            ),
            outputs=[ms, report],
            casa_calls=[("importasdm", _parameters(12)), ("listobs", _parameters(6)), ("flagdata", _parameters(9))],
            qa=[_score("flagged", 0.07, "7 % of the data flagged online")],
        )


def _calibration(job: CalibrationJob) -> Outcome:
    ms = _ref(f"{job.output_prefix}{mous_key(job.mous_id)}.calibrated.ms.tar", 31_000_000_000)
    tables = [_ref(f"{job.output_prefix}tables/{name}.tar", 2_000_000)
              for name in ("bandpass.b", "phase_int.g", "flux.g", "amp.g")]
    return Outcome(
        result=CalibrationResult(
            mode=CalibrationMode.CALIBRATED, flux_scale_known=True, measurement_sets=[ms], tables=tables,
            summary="bandpass from J0423-0120, flux scale from J0423-0120 (catalogue), phases from J0348-2749; "
                    "applied to the science targets",
        ),
        outputs=[ms, *tables],
        casa_calls=[("flagdata", _parameters(3)), ("setjy", _parameters(8)), ("bandpass", _parameters(14)),
                    ("gaincal", _parameters(13)), ("gaincal", _parameters(13)), ("fluxscale", _parameters(6)),
                    ("applycal", _parameters(8)), ("split", _parameters(6))],
        qa=[_score("bandpass_snr", 41.0, "bandpass solutions have good S/N"),
            _score("phase_rms_deg", 18.0, "phase scatter on the phase calibrator is low")],
    )


def _findcont(job: FindcontJob) -> Outcome:
    window = _window(job.metadata, job.spw_id)
    low, high = window.min_frequency_hz, window.max_frequency_hz
    span = high - low
    cont_dat = _ref(f"{job.output_prefix}cont.dat", 180, "text/plain")
    plot = _ref(f"{job.output_prefix}findcont.png", 61_000, PNG)
    record = _ref(f"{job.output_prefix}continuum.json", 420, "application/json")
    return Outcome(
        result=FindcontResult(
            continuum=ContinuumRanges(
                target=job.target, spw_id=job.spw_id, channel_ranges="0~40;88~127",
                ranges=[FrequencyRange(low_hz=low, high_hz=low + 0.32 * span),
                        FrequencyRange(low_hz=low + 0.69 * span, high_hz=high)],
                case=ContinuumCase.LINES_AND_CONTINUUM, source="findcont", continuum_fraction=0.63,
            ),
            cont_dat=cont_dat, plot=plot,
        ),
        outputs=[cont_dat, plot, record],
        casa_calls=[],
        qa=[_score("continuum_fraction", 0.63, "one line found; 63 % of the channels are continuum")],
        log=False,
    )


def _imaging(job: ImagingJob) -> Outcome:
    if job.kind == ImagingKind.CONTSUB:
        ms = _ref(f"{job.output_prefix}{mous_key(job.mous_id)}.contsub.ms.tar", 9_000_000_000)
        return Outcome(
            result=ImagingResult(kind=job.kind, target=job.target, spw_ids=job.spw_ids, measurement_sets=[ms]),
            outputs=[ms],
            casa_calls=[("uvcontsub", _parameters(8))],
            qa=[_score("fitorder", 1.0, f"spw {spw}: continuum fitted with order 1", applies_to=f"spw{spw}")
                for spw in job.spw_ids],
        )
    windows = [_window(job.metadata, spw) for spw in job.spw_ids]
    is_cube = job.kind in (ImagingKind.CUBE, ImagingKind.CUBE_CHUNK)
    channels = job.chunk.num_channels if job.chunk else windows[0].num_channels if is_cube else 1
    stem = f"{mous_key(job.mous_id)}.{job.target}.spw{'_'.join(str(spw) for spw in job.spw_ids)}.{job.kind.value}"
    # A chunk's images are intermediates in its work prefix; an image's are products.
    folder = job.output_prefix if job.chunk else job.products_prefix
    pixels = 216 * 216 * channels * 4
    files = {role: _ref(f"{folder}{stem}.{role}.fits", pixels, FITS) for role in ("pbcor", "image", "pb", "mask",
                                                                                "residual")}
    chunk = None
    if job.chunk is not None:
        chunk = CubeChunkImage(
            chunk=job.chunk, first_output_channel=job.chunk.first_channel, cube_channels=job.chunk.total_channels,
            channel_binning=1, deconvolver="hogbom", pb_level=0.2, expected_beam_arcsec=1.05, dirty_peak_jy=0.041,
            niter=10000, iterations=812, stopcode=2, stop_description="threshold reached",
            peak_residual_growth=1.0,
        )
    scores = [_score("rms_over_theoretical", 1.08, "rms close to the theoretical sensitivity"),
              _score("beam_over_expected", 1.02, "beam as expected"),
              _score("dynamic_range", 74.0, "dynamic range as expected for the data"),
              _score("clean_stop", 2.0, "cleaned to the threshold"),
              _score("mitigation", 0.0, "no size mitigation needed")]
    image = ImageProduct(
        kind=job.kind, target=job.target, spw_ids=job.spw_ids, pbcor=files["pbcor"], image=files["image"],
        pb=files["pb"], extra=[files["mask"], files["residual"]],
        beam=Beam(major_arcsec=1.12, minor_arcsec=0.94, position_angle_deg=-71.0), cell_arcsec=0.21,
        imsize=[216, 216], num_channels=channels, frequency_min_hz=min(w.min_frequency_hz for w in windows),
        frequency_max_hz=max(w.max_frequency_hz for w in windows), rms_jy=4.4e-4, peak_jy=0.0326,
        theoretical_sensitivity_jy=4.1e-4, threshold_jy=8.2e-4, qa=[] if chunk else scores,
        imaged_in_chunks=max(1, len(job.chunks)), chunk=chunk,
    )
    return Outcome(
        result=ImagingResult(kind=job.kind, target=job.target, spw_ids=job.spw_ids, images=[image]),
        outputs=list(files.values()),
        casa_calls=_image_calls(stem),
        qa=[] if chunk else scores,
    )


def _image_calls(stem: str) -> list[tuple[str, dict[str, object]]]:
    """A dirty image for the threshold, the PSF, the cleaned image; each FITS file exported and read back;
    the common beam set on the cube's planes (as the demo MOUS's image jobs record them)."""
    tclean = dict(TCLEAN_PARAMETERS, imagename=stem)
    calls: list[tuple[str, dict[str, object]]] = [
        ("tclean", dict(list(tclean.items())[:17])), ("tclean", dict(list(tclean.items())[:30])), ("tclean", tclean),
    ]
    for role in ("pbcor", "image", "pb", "mask", "residual"):
        name = f"{stem}.{role}"
        calls += [("imhead", dict(IMHEAD_PARAMETERS, imagename=name)),
                  ("imhead", dict(IMHEAD_PARAMETERS, imagename=name, hdkey="beamminor")),
                  ("exportfits", dict(EXPORTFITS_PARAMETERS, imagename=name, fitsimage=f"{name}.fits"))]
    calls += [("ia.open", {"infile": f"{stem}.image"}), ("ia.setrestoringbeam", {"remove": True}), ("ia.close", {})]
    return calls


def _previews(job: PreviewsJob) -> Outcome:
    image = job.image
    stem = f"{job.products_prefix}{mous_key(job.mous_id)}.{image.target}.{image.kind.value}"
    roles = [PreviewRole.QUICKLOOK, PreviewRole.THUMBNAIL]
    if image.kind == ImagingKind.CUBE:
        roles += [PreviewRole.MOMENT0, PreviewRole.MOMENT0_PNG, PreviewRole.PEAK, PreviewRole.PEAK_PNG,
                  PreviewRole.SPECTRUM_PNG]
    files = [PreviewFile(role=role, file=_ref(f"{stem}.{role.value}", 90_000, FITS if role in FITS_PREVIEWS else PNG))
             for role in roles]
    outputs = [preview.file for preview in files]
    hips = None
    if image.kind == ImagingKind.CONT:  # the aggregate continuum gets a HiPS and its offline viewer
        prefix = f"{stem}.hips/"
        tiles = [_ref(f"{prefix}Norder{order}/Dir0/Npix{pixel}.png", 30_000, PNG)
                 for order in range(4) for pixel in range((HIPS_FILES - 2) // 4)]
        properties = _ref(f"{prefix}properties", 900, "text/plain")
        viewer = _ref(f"{prefix}index.html", 2_400, "text/html")
        hips = HipsProduct(prefix=prefix, properties=properties, viewer_page=viewer, max_order=3, min_order=0,
                           tiles=len(tiles), files=[properties, viewer, *tiles])
        outputs += hips.files
    return Outcome(
        result=PreviewsResult(kind=image.kind.value, target=image.target, spw_ids=image.spw_ids, files=files,
                              hips=hips),
        outputs=outputs,
        casa_calls=[],
        qa=[],
        log=False,
    )


def _footprint(job: FootprintJob) -> Outcome:
    image = job.image
    stem = f"{job.products_prefix}{mous_key(job.mous_id)}.{image.target}.{image.kind.value}"
    moc = _ref(f"{stem}.moc.fits", 5_760, FITS)
    moc_json = _ref(f"{stem}.moc.json", 410, "application/json")
    record_json = _ref(f"{stem}.obscore.json", 1_300, "application/json")
    votable = _ref(f"{stem}.obscore.xml", 6_100, "application/x-votable+xml")
    field = next(field for field in job.metadata.measurement_sets[0].fields if field.name == image.target)
    corners = " ".join(f"{field.ra_deg + 0.004 * (index % 3 - 1):.6f} {field.dec_deg + 0.004 * (index % 5 - 2):.6f}"
                       for index in range(24))
    record = ObsCoreRecord(
        dataproduct_type=DataProductType.CUBE if image.num_channels > 1 else DataProductType.IMAGE, calib_level=3,
        obs_collection=job.obs_collection, obs_id=job.mous_id,
        obs_publisher_did=f"ivo://aperture/products?{image.pbcor.key}", access_url=image.pbcor.key,
        access_format=FITS, access_estsize=image.pbcor.size // 1024, target_name=image.target, s_ra=field.ra_deg,
        s_dec=field.dec_deg, s_fov=0.0121, s_region=f"Polygon ICRS {corners}", s_resolution=image.beam.major_arcsec,
        s_xel1=image.imsize[0], s_xel2=image.imsize[1], s_pixel_scale=image.cell_arcsec, t_min=60250.1319,
        t_max=60250.1840, t_exptime=2419.2, t_resolution=2.016, t_xel=1,
        em_min=299_792_458.0 / image.frequency_max_hz, em_max=299_792_458.0 / image.frequency_min_hz,
        em_res_power=1.2e5 if image.num_channels > 1 else 120.0, em_xel=image.num_channels, o_ucd="phot.flux.density",
        pol_states="/I/", pol_xel=1, facility_name="ALMA", instrument_name="ALMA Band 6",
    )
    return Outcome(
        result=FootprintResult(
            kind=image.kind.value, target=image.target, spw_ids=image.spw_ids, moc=moc, moc_json=moc_json,
            moc_order=12, area_deg2=3.1e-5, s_region=record.s_region, pb_limit=job.pb_limit, obscore=record,
            votable=votable,
        ),
        outputs=[moc, moc_json, record_json, votable],
        casa_calls=[],
        qa=[],
    )


def _export(job: ExportJob, at: datetime) -> Outcome:
    """The weblog (a page per job), the CASA commands, the job parameters and the manifest; the products
    themselves are already stored under the products prefix by the jobs that made them."""
    prefix = job.products_prefix
    pages = [_ref(f"{prefix}weblog/jobs/{record.job_id}.html", 7_000, "text/html") for record in job.jobs]
    weblog = _ref(f"{prefix}weblog/index.html", 21_000, "text/html")
    local = [_ref(f"{prefix}{mous_key(job.mous_id)}.casa_commands.log", 64_000, "text/plain"),
             _ref(f"{prefix}{mous_key(job.mous_id)}.job_parameters.json", 12_000, "application/json"),
             weblog, _ref(f"{prefix}weblog/style.css", 3_000, "text/css"), *pages]
    manifest = _ref(f"{prefix}{mous_key(job.mous_id)}.manifest.json", 40_000, "application/json")
    products = [ref for record in job.jobs for ref in record.outputs if ref.key.startswith(prefix)]
    return Outcome(
        result=ExportResult(
            package_prefix=prefix, manifest=manifest, weblog=weblog, casa_commands=local[0],
            files=len(products) + len(local) + 1, total_bytes=sum(ref.size for ref in [*products, *local, manifest]),
            created_at=at,
        ),
        outputs=[*local, manifest],
        casa_calls=[],
        qa=[],
        log=False,
    )


def _duration(job: JobEnvelope) -> float:
    if isinstance(job, ImagingJob):
        return IMAGING_DURATION_S[job.kind]
    return DURATION_S[job.stage]


def _window(metadata: MousMetadata, spw_id: int) -> SpectralWindow:
    return next(window for window in metadata.measurement_sets[0].spectral_windows if window.spw_id == spw_id)


def _ref(key: str, size: int, content_type: str = "application/octet-stream") -> ObjectRef:
    """A stored object; its checksum stands for the content's (the key's hash: unique, and cheap)."""
    return ObjectRef(key=key, sha256=hashlib.sha256(key.encode()).hexdigest(), size=size, content_type=content_type)


def _parameters(count: int) -> dict[str, object]:
    """`count` parameters of a CASA task other than the imaging ones, of typical size."""
    return {f"parameter_{index}": f"value {index} of a typical length" for index in range(count)}


def _score(metric: str, value: float, message: str, applies_to: str = "") -> QAScore:
    return QAScore(score=0.95, message=message, metric=QAMetric(name=metric, value=value), applies_to=applies_to)
