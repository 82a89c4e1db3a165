"""The imaging steps that run inside the CASA child process (see aperture_shared.casa.runner): continuum
subtraction of a target, one image (mfs, cont or cube) from the first PSF to the FITS files, one channel
chunk of a cube (its CASA images), and the join of a cube's chunks into its FITS files.

Everything that touches CASA happens here, in one process per job with a time and memory limit; the
handler around it plans from the job (pure), moves files, and scores QA.
"""

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aperture_contracts.enums import ImagingKind
from aperture_contracts.events import CasaCall
from aperture_contracts.imaging import (
    Beam,
    ChannelChunk,
    ImagingOverrides,
    ProductSizeLimits,
    SpectralAxis,
)
from aperture_contracts.spectral import narrowest_channel_hz
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput
from pydantic import BaseModel

from aperture_imaging import heuristics
from aperture_imaging.continuum_selection import SpwSubtraction
from aperture_imaging.cube_chunks import (
    ChunksDoNotJoin,
    OutputChannels,
    SpectralGrid,
    check_grids_continue,
    output_channels,
)
from aperture_imaging.fits_export import MOUS_KEYWORD, SPW_KEYWORD, export_fits
from aperture_imaging.image_statistics import (
    opened_image,
    peak_residuals_per_plane,
    peak_within_pb,
    restoring_beam,
    robust_rms_jy,
    spectral_extent_hz,
)
from aperture_imaging.imaging_qa import peak_residual_growth
from aperture_imaging.naming import ALPHA, IMAGE, MASK, PB, PBCOR, RESIDUAL, contsub_ms_name, fits_name
from aperture_imaging.product_size import FixedByOverrides, ImageGeometry, fit_product_size
from aperture_imaging.spectral_axis import in_equal_wavelength_steps, tclean_spectral_parameters
from aperture_imaging.visibility_statistics import (
    DataSelection,
    VisibilityStatistics,
    measure_visibilities,
    select_data,
)

# The quick PSF that measures the beam before the pixel size is known: this many pixels across, at 5
# pixels per expected beam, is ample for fitting the main lobe and takes about a second.
QUICK_PSF_PIXELS = 128
# Automasking grows masks into fainter emission for this many iterations (tclean's default).
GROW_ITERATIONS = 75


# -- continuum subtraction -----------------------------------------------------------------------------


class ContinuumSubtractedMeasurementSet(BaseModel):
    path: str
    source: str  # the MS it came from
    spw_ids: list[int]
    subtracted: bool  # False: spws without continuum, passed on as they were


class ContsubStepResult(BaseModel):
    measurement_sets: list[ContinuumSubtractedMeasurementSet]


def subtract_continuum(arguments: dict[str, Any], calls: CasaCallLog) -> ContsubStepResult:
    """Write, per input MS, the target's spws with their continuum fitted and subtracted in the uv plane
    (uvcontsub) and, when some spws have no continuum, those spws unsubtracted in a second MS.

    arguments: measurement_sets (paths), target, subtract (SpwSubtraction fields per spw), pass_through
    (spw ids), output_dir. Both outputs keep the input's spw ids (uvcontsub and mstransform with
    reindex=False), so a cube job selects its spw by the id the MOUS knows it by.
    """
    target = arguments["target"]
    subtract = [SpwSubtraction(**entry) for entry in arguments["subtract"]]
    pass_through = [int(spw) for spw in arguments["pass_through"]]
    output_dir = Path(arguments["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    wanted = {entry.spw_id: entry.channels for entry in subtract} | {spw: "" for spw in pass_through}
    selection = select_data([Path(path) for path in arguments["measurement_sets"]], target, wanted)
    written: list[ContinuumSubtractedMeasurementSet] = []
    for ms in selection.measurement_sets:
        source = Path(ms.path).name
        fits = [entry for entry in subtract if entry.spw_id in ms.spw_channels]
        unsubtracted = [spw for spw in pass_through if spw in ms.spw_channels]
        if fits:
            output = output_dir / contsub_ms_name(source, target, subtracted=True)
            # Per field and spw: the line-free channels to fit ('' = all) and the polynomial order.
            fitspec = {
                str(field_id): {
                    str(entry.spw_id): {"chan": entry.channels, "fitorder": entry.fitorder} for entry in fits
                }
                for field_id in ms.field_ids
            }
            calls.task(
                "uvcontsub", vis=ms.path, outputvis=str(output), field=ms.field,
                spw=",".join(str(entry.spw_id) for entry in fits), datacolumn="data", fitspec=fitspec,
                fitmethod="gsl", writemodel=False,
            )
            _require_written(output, "uvcontsub")
            written.append(
                ContinuumSubtractedMeasurementSet(
                    path=str(output), source=source, spw_ids=[entry.spw_id for entry in fits], subtracted=True
                )
            )
        if unsubtracted:
            output = output_dir / contsub_ms_name(source, target, subtracted=False)
            calls.task(
                "mstransform", vis=ms.path, outputvis=str(output), field=ms.field,
                spw=",".join(str(spw) for spw in unsubtracted), datacolumn="data", reindex=False, keepflags=True,
            )
            _require_written(output, "mstransform")
            written.append(
                ContinuumSubtractedMeasurementSet(
                    path=str(output), source=source, spw_ids=unsubtracted, subtracted=False
                )
            )
    return ContsubStepResult(measurement_sets=written)


def _require_written(path: Path, task: str) -> None:
    if not (path / "table.dat").is_file():
        raise RuntimeError(f"{task} did not write {path.name}; see the CASA log")


# -- one image -----------------------------------------------------------------------------------------


class ImageStepResult(BaseModel):
    """The FITS files of one image and the figures its product record and QA are made of. A chunk of a
    cube leaves its CASA images instead (casa_images), which the cube's join exports."""

    fits: dict[str, str]  # role (naming.PBCOR, ...) -> path
    casa_images: dict[str, str] = {}  # a cube chunk's: role -> CASA image path
    first_channel: int = 0  # of a cube chunk: its first channel on the whole cube's output grid
    cube_channels: int = 1  # output channels of the whole cube (1 for continuum images)
    deconvolver: str
    nterms: int
    beam: Beam
    expected_beam_arcsec: float
    cell_arcsec: float
    imsize: list[int]
    num_channels: int
    channel_binning: int
    pb_level: float
    frequency_min_hz: float
    frequency_max_hz: float
    rms_jy: float
    peak_jy: float
    theoretical_sensitivity_jy: float
    threshold_jy: float
    dirty_peak_jy: float
    dynamic_range_correction: float
    niter: int
    iterations: int
    stopcode: int
    stop_description: str
    peak_residual_growth: float
    mitigation: list[str]


@dataclass(frozen=True)
class Weighting:
    robust: float
    uvtaper_arcsec: float | None

    def tclean(self) -> dict[str, Any]:
        taper = [f"{self.uvtaper_arcsec}arcsec"] if self.uvtaper_arcsec else []
        return {"weighting": "briggs", "robust": self.robust, "uvtaper": taper}


def make_image(arguments: dict[str, Any], calls: CasaCallLog) -> ImageStepResult:
    """Image one product with the ALMA-like heuristics (each overridable by the job's overrides):

    1. the beam from a quick PSF (tclean niter=0), the pixel size for 5 pixels across its minor axis and
       an image reaching the primary beam's 0.2 level, then the product-size cascade;
    2. the theoretical sensitivity from the visibility weights (natural weighting), times the
       robust-over-natural noise ratio of the chosen weighting (imager.apparentsens);
    3. tclean without iterations (PSF, primary beam and dirty image), whose peak sets the dynamic-range
       correction of the threshold (4 sigma x correction); then tclean continues from there with
       auto-multithresh masking down to that threshold, restores and corrects for the primary beam;
    4. the robust rms, the peak and the beam are measured, and the images exported to FITS.

    A cube chunk (argument `chunk`, a dumped ChannelChunk) plans the whole cube the same way, so that every
    chunk images the same grid with the same threshold sensitivity, then cleans only its channels of the
    whole cube's output grid (tclean start and nchan) and leaves its CASA images unexported; its
    threshold's dynamic-range correction comes from its own dirty peak (the only one it sees).

    A cube on a user-defined spectral axis (argument `spectral_axis`, a dumped SpectralAxis) has the
    requested channels instead of the spw's native ones: tclean regrids to them, its sensitivity per
    plane is that of the requested width, and its FITS spectral axis is the requested one.

    arguments: measurement_sets, target, kind, spw_channels ({spw id: channel ranges or ''}), overrides,
    size_limits (both as dumped models), work_dir, fits_dir, product_stem, mous_id, chunk (or None), and
    spectral_axis (or None; optional).
    """
    kind = ImagingKind(arguments["kind"])
    target = arguments["target"]
    overrides = ImagingOverrides.model_validate(arguments["overrides"])
    spw_channels = {int(spw): str(channels) for spw, channels in arguments["spw_channels"].items()}
    chunk = ChannelChunk.model_validate(arguments["chunk"]) if arguments.get("chunk") else None
    if chunk is not None and kind != ImagingKind.CUBE:
        raise BadInput(f"only cubes are imaged in channel chunks, not {kind.value} images")
    axis = SpectralAxis.model_validate(arguments["spectral_axis"]) if arguments.get("spectral_axis") else None
    if axis is not None and (kind != ImagingKind.CUBE or chunk is not None):
        raise BadInput("a spectral axis is for a cube imaged in one job, not for a chunk or a continuum image")
    work_dir = Path(arguments["work_dir"])
    work_dir.mkdir(parents=True, exist_ok=True)
    product = f"the {kind.value} image of {target!r} (spw {', '.join(str(spw) for spw in spw_channels)})"
    if chunk is not None:
        product = f"{product}, {chunk.describe()}"

    selection = select_data([Path(path) for path in arguments["measurement_sets"]], target, spw_channels)
    statistics = measure_visibilities(selection)
    plan = _plan_image(
        calls, product, kind, selection, statistics, overrides,
        ProductSizeLimits.model_validate(arguments["size_limits"]), work_dir, axis,
    )

    channels = (
        output_channels(chunk, plan.geometry.native_channels, plan.geometry.channel_binning) if chunk else None
    )
    base = work_dir / "image"
    parameters = _tclean_parameters(selection, base, kind, plan, channels)
    calls.task("tclean", **parameters, niter=0, calcres=True, calcpsf=True, restoration=False, pbcor=False)
    images = _image_paths(base, plan.deconvolver.multiterm)
    dirty_peak = peak_within_pb(images[RESIDUAL], images[PB], plan.pblimit, absolute=True)
    correction = heuristics.dynamic_range_correction(dirty_peak, plan.sensitivity_jy)
    threshold = (
        overrides.threshold_jy if overrides.threshold_jy is not None
        else heuristics.clean_threshold_jy(plan.sensitivity_jy, correction)
    )
    niter = _niter(overrides.niter, plan.planes, channels)
    print(
        "imaging plan: " + json.dumps(
            {**plan.describe(), "dirty_peak_jy": dirty_peak, "dr_correction": correction,
             "threshold_jy": threshold, "niter": niter, "chunk": chunk.describe() if chunk else None}
        ),
        flush=True,
    )
    summary = calls.task(
        "tclean", **parameters, niter=niter, threshold=f"{threshold}Jy", calcres=False, calcpsf=False,
        restart=True, restoration=True, pbcor=True,
    )
    summary = summary if isinstance(summary, dict) else {}
    images = {role: path for role, path in images.items() if Path(path).exists()}

    if kind == ImagingKind.CUBE:
        frequency_min, frequency_max, num_channels = spectral_extent_hz(images[IMAGE])
    else:
        frequency_min, frequency_max, num_channels = statistics.frequency_min_hz, statistics.frequency_max_hz, 1
    stem = arguments["product_stem"]
    keywords = {MOUS_KEYWORD: arguments["mous_id"], SPW_KEYWORD: ",".join(str(spw) for spw in spw_channels)}
    geometry = plan.geometry
    return ImageStepResult(
        beam=restoring_beam(images[IMAGE]),
        rms_jy=robust_rms_jy(images[RESIDUAL], images.get(MASK), images[PB], plan.pblimit),
        peak_jy=peak_within_pb(images[PBCOR], images[PB], plan.pblimit),
        fits={} if chunk is not None else export_fits(
            calls, images, {role: fits_name(stem, role, plan.deconvolver.multiterm) for role in images},
            Path(arguments["fits_dir"]), keywords,
            linear_in_wavelength=axis is not None and in_equal_wavelength_steps(axis),
        ),
        casa_images=images if chunk is not None else {},
        first_channel=channels.first if channels else 0, cube_channels=plan.planes,
        deconvolver=plan.deconvolver.name, nterms=plan.deconvolver.nterms,
        expected_beam_arcsec=plan.expected_beam_arcsec, cell_arcsec=geometry.cell_arcsec,
        imsize=list(geometry.imsize), num_channels=num_channels, channel_binning=geometry.channel_binning,
        pb_level=geometry.pb_level, frequency_min_hz=frequency_min, frequency_max_hz=frequency_max,
        theoretical_sensitivity_jy=plan.sensitivity_jy, threshold_jy=threshold, dirty_peak_jy=dirty_peak,
        dynamic_range_correction=correction, niter=niter, iterations=int(summary.get("iterdone", 0)),
        stopcode=int(summary.get("stopcode", 0)), stop_description=str(summary.get("stopDescription", "")),
        peak_residual_growth=peak_residual_growth(peak_residuals_per_plane(summary)),
        mitigation=plan.mitigation,
    )


@dataclass(frozen=True)
class ImagingPlan:
    """What the heuristics (or the overrides) chose for one image, before any image is made."""

    deconvolver: heuristics.Deconvolver
    weighting: Weighting
    quick_beam: Beam
    expected_beam_arcsec: float
    pb_fwhm_arcsec: float
    pblimit: float
    geometry: ImageGeometry
    planes: int
    natural_sensitivity_jy: float  # of all the selected data
    robust_over_natural: float
    sensitivity_jy: float  # per image plane, with the chosen weighting
    automask: heuristics.AutomaskParameters
    mitigation: list[str]
    spectral_axis: SpectralAxis | None = None  # a cube's requested channels (None: the native ones)

    def describe(self) -> dict[str, Any]:
        return {
            "deconvolver": self.deconvolver.name, "nterms": self.deconvolver.nterms,
            "quick_beam_arcsec": [self.quick_beam.major_arcsec, self.quick_beam.minor_arcsec],
            "expected_beam_arcsec": self.expected_beam_arcsec, "pb_fwhm_arcsec": self.pb_fwhm_arcsec,
            "cell_arcsec": self.geometry.cell_arcsec, "imsize": self.geometry.imsize, "planes": self.planes,
            "channel_binning": self.geometry.channel_binning, "pb_level": self.geometry.pb_level,
            "natural_sensitivity_jy": self.natural_sensitivity_jy, "robust_over_natural": self.robust_over_natural,
            "sensitivity_jy": self.sensitivity_jy, "mitigation": self.mitigation,
            "spectral_axis": self.spectral_axis.model_dump(mode="json") if self.spectral_axis else None,
        }


def _plan_image(
    calls: CasaCallLog,
    product: str,
    kind: ImagingKind,
    selection: DataSelection,
    statistics: VisibilityStatistics,
    overrides: ImagingOverrides,
    limits: ProductSizeLimits,
    work_dir: Path,
    spectral_axis: SpectralAxis | None = None,
) -> ImagingPlan:
    """Deconvolver, weighting, pixel and image size (through the size cascade) and the sensitivity. A cube
    on a requested spectral axis has its channels, never binned, each as sensitive as its width makes it."""
    cube = kind == ImagingKind.CUBE
    deconvolver = heuristics.choose_deconvolver(
        kind,
        heuristics.fractional_bandwidth(statistics.frequency_min_hz, statistics.frequency_max_hz),
        overrides.deconvolver, overrides.nterms,
    )
    if cube and deconvolver.multiterm:
        raise BadInput(
            f"{product}: the overrides ask for {deconvolver.name} with {deconvolver.nterms} terms, which is for "
            "continuum images; leave deconvolver and nterms unset for cubes (or use multiscale or hogbom)"
        )
    weighting = Weighting(
        overrides.robust if overrides.robust is not None else heuristics.DEFAULT_ROBUST, overrides.uvtaper_arcsec
    )
    expected_beam = heuristics.expected_beam_arcsec(
        statistics.frequency_centre_hz, statistics.baseline_l80_m, overrides.uvtaper_arcsec
    )
    quick_beam = _quick_psf_beam(calls, selection, work_dir / "quick", expected_beam, weighting)
    pblimit = overrides.pblimit if overrides.pblimit is not None else heuristics.DEFAULT_PB_LEVEL
    pb_fwhm = heuristics.primary_beam_fwhm_arcsec(statistics.frequency_min_hz, statistics.dish_diameter_m)
    cell = overrides.cell_arcsec or heuristics.cell_for_beam(quick_beam.minor_arcsec)
    if overrides.imsize is not None:
        imsize = (overrides.imsize[0], overrides.imsize[1])
    elif overrides.field_size_arcsec is not None:
        side = heuristics.optimum_image_size(math.ceil(overrides.field_size_arcsec / cell))
        imsize = (side, side)
    else:
        side = heuristics.imsize_for_pb_level(pb_fwhm, pblimit, cell)
        imsize = (side, side)
    if spectral_axis is not None:
        native_channels = spectral_axis.nchan  # the planes asked for: the size cascade may not bin them
    else:
        native_channels = sum(statistics.selected_channels.values()) if cube else 1
    sized = fit_product_size(
        product,
        ImageGeometry(cell, imsize, native_channels, overrides.channel_binning or 1, pblimit),
        beam_minor_arcsec=quick_beam.minor_arcsec, pb_fwhm_arcsec=pb_fwhm, limits=limits,
        fixed=FixedByOverrides(
            cell=overrides.cell_arcsec is not None,
            imsize=overrides.imsize is not None or overrides.field_size_arcsec is not None,
            channel_binning=overrides.channel_binning is not None or spectral_axis is not None,
        ),
        cube=cube,
    )
    planes = sized.geometry.channels if cube else 1
    robust_factor = _robust_over_natural(selection, sized.geometry, weighting)
    natural = statistics.natural_sensitivity_jy
    if spectral_axis is not None:
        # The narrowest requested channel (optical velocities narrow in Hz as they rise) is the noisiest.
        per_plane = heuristics.cube_plane_sensitivity_jy(
            natural, statistics.frequency_max_hz - statistics.frequency_min_hz, narrowest_channel_hz(spectral_axis)
        )
    else:
        # A cube plane holds 1/planes of the weight of the whole spw.
        per_plane = natural * math.sqrt(planes)
    return ImagingPlan(
        deconvolver=deconvolver, weighting=weighting, quick_beam=quick_beam, expected_beam_arcsec=expected_beam,
        pb_fwhm_arcsec=pb_fwhm, pblimit=pblimit, geometry=sized.geometry, planes=planes,
        natural_sensitivity_jy=natural, robust_over_natural=robust_factor,
        sensitivity_jy=per_plane * robust_factor,
        automask=heuristics.automask_parameters(statistics.dish_diameter_m, statistics.baseline_l75_m, cube),
        mitigation=sized.mitigation, spectral_axis=spectral_axis,
    )


def _quick_psf_beam(
    calls: CasaCallLog, selection: DataSelection, base: Path, expected_arcsec: float, weighting: Weighting
) -> Beam:
    """The beam of the data with the chosen weighting, fitted to a small PSF: what the pixel size is
    chosen from (the uv coverage alone gives only an estimate, `expected_arcsec`)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    calls.task(
        "tclean", vis=selection.vis, field=selection.field, spw=selection.spw, datacolumn="data",
        imagename=str(base), specmode="mfs", imsize=[QUICK_PSF_PIXELS, QUICK_PSF_PIXELS],
        cell=f"{heuristics.cell_for_beam(expected_arcsec)}arcsec", gridder="standard", **weighting.tclean(),
        niter=0, calcres=False, calcpsf=True, pbcor=False, interactive=False,
    )
    return restoring_beam(f"{base}.psf")


def _robust_over_natural(selection: DataSelection, geometry: ImageGeometry, weighting: Weighting) -> float:
    """How much noisier the chosen weighting is than natural weighting, from CASA's imager. Its absolute
    figure (apparentsens's first value) is not used: it counts every channel of a spw even when only
    some are selected, while the natural sensitivity computed from the weights counts what is imaged."""
    import casatools  # type: ignore[import-untyped]

    imager = casatools.imager()
    try:
        for ms in selection.measurement_sets:
            imager.selectvis(vis=ms.path, field=ms.field, spw=ms.spw)
        nx, ny = geometry.imsize
        cell = f"{geometry.cell_arcsec}arcsec"
        imager.defineimage(nx=nx, ny=ny, cellx=cell, celly=cell, mode="mfs")
        imager.weight(type="briggs", robust=weighting.robust)
        if weighting.uvtaper_arcsec:
            taper = f"{weighting.uvtaper_arcsec}arcsec"
            imager.filter(type="gaussian", bmaj=taper, bmin=taper, bpa="0deg")
        ok, _, ratio = imager.apparentsens()
    finally:
        imager.done()
    return float(ratio) if ok and ratio > 0 else 1.0


def _niter(override: int | None, planes: int, channels: OutputChannels | None) -> int:
    """The iteration cap: the job's override or the heuristics' for the image's planes. A chunk takes its
    share of the whole cube's (tclean counts a cube's iterations over all its planes)."""
    if override is None:
        return heuristics.niter_cap(channels.count if channels else planes)
    return override if channels is None else math.ceil(override * channels.count / channels.cube_channels)


def _tclean_parameters(
    selection: DataSelection, base: Path, kind: ImagingKind, plan: ImagingPlan, channels: OutputChannels | None
) -> dict[str, Any]:
    """What both tclean passes share (the second continues the first, so these must not change)."""
    geometry, automask = plan.geometry, plan.automask
    parameters: dict[str, Any] = {
        "vis": selection.vis, "field": selection.field, "spw": selection.spw, "datacolumn": "data",
        "imagename": str(base), "imsize": list(geometry.imsize), "cell": f"{geometry.cell_arcsec}arcsec",
        "gridder": "standard", "pblimit": plan.pblimit, "deconvolver": plan.deconvolver.name,
        **plan.weighting.tclean(), "interactive": False, "usemask": "auto-multithresh",
        "sidelobethreshold": automask.sidelobethreshold, "noisethreshold": automask.noisethreshold,
        "lownoisethreshold": automask.lownoisethreshold, "minbeamfrac": automask.minbeamfrac,
        "negativethreshold": automask.negativethreshold, "growiterations": GROW_ITERATIONS,
    }
    if plan.deconvolver.multiterm:
        parameters["nterms"] = plan.deconvolver.nterms
    if plan.deconvolver.multiscale:
        beam = math.sqrt(plan.quick_beam.major_arcsec * plan.quick_beam.minor_arcsec)
        parameters["scales"] = heuristics.multiscale_scales(beam, geometry.cell_arcsec, list(geometry.imsize))
    if kind == ImagingKind.CUBE:
        parameters |= {"specmode": "cube", "outframe": "LSRK", "perchanweightdensity": True, "restoringbeam": ""}
        if plan.spectral_axis is not None:
            # The requested grid, in its frame; tclean interpolates the data's channels onto it.
            parameters |= tclean_spectral_parameters(plan.spectral_axis)
        elif channels is None:
            parameters |= {
                "nchan": -1, "start": "", "width": geometry.channel_binning if geometry.channel_binning > 1 else ""
            }
        else:
            # A chunk's channels of the whole cube's grid, named in native channels of the selection (start)
            # and their binning (width): the grid's frequencies are the same in every chunk, channel by
            # channel, because each is the same native channel's. Per-channel weight density keeps the
            # weights of a plane independent of the other channels imaged with it.
            parameters |= {"nchan": channels.count, "start": channels.first_native, "width": channels.binning}
    else:
        parameters["specmode"] = "mfs"
    return parameters


def _image_paths(base: Path, multiterm: bool) -> dict[str, str]:
    """The CASA images of each product role (mtmfs writes Taylor-term images: .image.tt0, ...)."""
    term = ".tt0" if multiterm else ""
    paths = {
        IMAGE: f"{base}.image{term}",
        PBCOR: f"{base}.image{term}.pbcor",
        PB: f"{base}.pb{term}",
        RESIDUAL: f"{base}.residual{term}",
        MASK: f"{base}.mask",
    }
    if multiterm:
        paths[ALPHA] = f"{base}.alpha"
    return paths


# -- the join of a cube's chunks -----------------------------------------------------------------------


class JoinStepResult(BaseModel):
    """The joined cube's FITS files and the figures measured on it."""

    fits: dict[str, str]  # role -> path
    beam: Beam
    num_channels: int
    frequency_min_hz: float
    frequency_max_hz: float
    rms_jy: float
    peak_jy: float


def join_cube(arguments: dict[str, Any], calls: CasaCallLog) -> JoinStepResult:
    """Concatenate the chunks' CASA images of each role along the spectral axis (per-channel beams and
    pixel masks with them), after checking that their grids continue each other exactly; measure the
    cube's beam, rms and peak on the joined images as for a cube made in one job; export the FITS files
    under the cube's names.

    arguments: chunks (per chunk, in channel order: role -> CASA image path), cube (a description for
    messages), pblimit, work_dir, fits_dir, product_stem, mous_id, spw_ids.
    """
    chunks: list[dict[str, str]] = arguments["chunks"]
    cube = arguments["cube"]
    roles = list(chunks[0])
    for number, chunk in enumerate(chunks, start=1):
        if sorted(chunk) != sorted(roles):
            raise ChunksDoNotJoin(f"{cube}: chunk {number} has images {sorted(chunk)}, chunk 1 {sorted(roles)}")
    work_dir = Path(arguments["work_dir"])
    work_dir.mkdir(parents=True, exist_ok=True)
    joined: dict[str, str] = {}
    for role in roles:
        paths = [chunk[role] for chunk in chunks]
        check_grids_continue(f"the {role} images of {cube}", [_spectral_grid(path) for path in paths])
        joined[role] = _concatenate(calls, paths, work_dir / f"cube.{role}")
    pblimit = float(arguments["pblimit"])
    frequency_min, frequency_max, num_channels = spectral_extent_hz(joined[IMAGE])
    stem = arguments["product_stem"]
    return JoinStepResult(
        fits=export_fits(
            calls, joined, {role: fits_name(stem, role, multiterm=False) for role in joined},
            Path(arguments["fits_dir"]),
            {MOUS_KEYWORD: arguments["mous_id"], SPW_KEYWORD: ",".join(str(spw) for spw in arguments["spw_ids"])},
        ),
        beam=restoring_beam(joined[IMAGE]),
        num_channels=num_channels, frequency_min_hz=frequency_min, frequency_max_hz=frequency_max,
        rms_jy=robust_rms_jy(joined[RESIDUAL], joined.get(MASK), joined[PB], pblimit),
        peak_jy=peak_within_pb(joined[PBCOR], joined[PB], pblimit),
    )


def _spectral_grid(path: str) -> SpectralGrid:
    with opened_image(path) as image:
        coordinates = image.coordsys()
        try:
            shape = tuple(int(n) for n in image.shape())
            axis = int(coordinates.findaxisbyname("spectral"))
            others = [index for index in range(len(shape)) if index != axis]
            values = [coordinates.referencevalue()["numeric"], coordinates.increment()["numeric"],
                      coordinates.referencepixel()["numeric"]]
            first = float(coordinates.toworld([0.0] * len(shape))["numeric"][axis])
            return SpectralGrid(
                shape=shape, spectral_axis=axis,
                other_axes=tuple(float(column[index]) for column in values for index in others),
                frame=str(coordinates.referencecode("spectral")),
                first_frequency_hz=first, channel_width_hz=float(values[1][axis]),
            )
        finally:
            coordinates.done()


def _concatenate(calls: CasaCallLog, paths: list[str], output: Path) -> str:
    """imageconcat of the image tool (casatasks has no such task in CASA 6.7), recorded like a task."""
    import casatools  # type: ignore[import-untyped]

    parameters: dict[str, Any] = {
        "outfile": str(output), "infiles": paths, "axis": -1, "relax": False, "tempclose": True,
        "overwrite": True, "reorder": False, "mode": "p",
    }
    started, t0 = datetime.now(UTC), time.monotonic()
    tool = casatools.image()
    try:
        # axis -1: the spectral axis. mode "p": a real (paged) image, not a reference to the chunks.
        concatenated = tool.imageconcat(**parameters)
        concatenated.done()
    finally:
        tool.done()
        calls.calls.append(
            CasaCall(task="ia.imageconcat", parameters=parameters, started_at=started,
                     duration_s=round(time.monotonic() - t0, 3))
        )
    if not (output / "table.dat").is_file():
        raise RuntimeError(f"imageconcat did not write {output.name}; see the CASA log")
    return str(output)
