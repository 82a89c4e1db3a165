"""The test MOUS generator, end to end with real CASA: the MS, its tables, the manifest, the truth."""

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts.packaging import RESTORE_MANIFEST_NAME, RestoreManifest
from aperture_testdata.scenarios import INTENT_BANDPASS, INTENT_PHASE, INTENT_TARGET
from aperture_testdata.truth import MousTruth

pytestmark = [pytest.mark.casa, pytest.mark.slow]


def _casatools():
    """casatools for helpers; every test that calls them depends on a fixture that checked CASA is there."""
    from aperture_testdata.casa_runtime import casatools_module

    return casatools_module()


def _column(ms: Path, column: str, query: str = "") -> np.ndarray:
    tb = _casatools().table()
    tb.open(str(ms))
    try:
        if not query:
            return tb.getcol(column)
        selection = tb.query(query)
        try:
            return selection.getcol(column)
        finally:
            selection.close()
    finally:
        tb.close()


def _data_checksum(ms: Path) -> str:
    return hashlib.sha256(np.ascontiguousarray(_column(ms, "DATA")).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def restored_package(generated_mous, tmp_path_factory) -> Path:
    """The package unpacked into a fresh folder and restored there with applycal, as ingest would."""
    from aperture_testdata.casa_runtime import casatasks_module

    root = tmp_path_factory.mktemp("restored")
    with tarfile.open(generated_mous.package) as tar:
        tar.extractall(root, filter="data")
    manifest = RestoreManifest.model_validate_json((root / RESTORE_MANIFEST_NAME).read_text())
    casatasks_module().applycal(
        vis=str(root / generated_mous.ms.name),
        gaintable=[str(root / entry.table) for entry in manifest.apply],
        interp=[entry.interp for entry in manifest.apply],
        gainfield=[entry.gainfield for entry in manifest.apply],
        spwmap=[entry.spwmap for entry in manifest.apply],
        calwt=[entry.calwt for entry in manifest.apply],
        flagbackup=False,
    )
    return root / generated_mous.ms.name


def test_ms_opens_with_the_ms_tool_and_msmetadata_and_matches_the_truth(generated_mous):
    tools = _casatools()
    truth: MousTruth = MousTruth.read(generated_mous.truth_file)
    ms_tool = tools.ms()
    ms_tool.open(str(generated_mous.ms))
    try:
        assert ms_tool.nrow() > 0
    finally:
        ms_tool.close()
    msmd = tools.msmetadata()
    msmd.open(str(generated_mous.ms))
    try:
        assert list(msmd.fieldnames()) == [f.name for f in truth.fields]
        for field in truth.fields:
            assert sorted(msmd.intentsforfield(field.field_id)) == sorted(field.intents)
        assert msmd.nspw() == len(truth.spws)
        for spw in truth.spws:
            frequencies = msmd.chanfreqs(spw.spw_id)
            assert len(frequencies) == spw.nchan
            assert frequencies[0] == pytest.approx(spw.first_channel_hz)
            assert frequencies[1] - frequencies[0] == pytest.approx(spw.channel_width_hz)
        assert msmd.nantennas() == len(truth.array.antennas)
        assert list(msmd.antennanames()) == [a.name for a in truth.array.antennas]
        assert sorted(msmd.scannumbers()) == [s.scan_number for s in truth.observation.scans]
        for scan in truth.observation.scans:
            # ALMA writes every spw of a pointing into one scan; so must the generator.
            assert sorted(msmd.spwsforscan(scan.scan_number)) == [s.spw_id for s in truth.spws]
    finally:
        msmd.done()


def test_truth_names_one_field_for_each_calibration_role_and_the_target(generated_mous):
    truth = generated_mous.truth
    assert len(truth.fields_with_intent(INTENT_BANDPASS)) == 1
    assert len(truth.fields_with_intent(INTENT_PHASE)) == 1
    target = truth.fields_with_intent(INTENT_TARGET)[0]
    assert {c.shape for c in target.components} == {"point", "gaussian"}
    assert any(c.lines for c in target.components)
    assert truth.observation.date.isoformat() == "2025-06-01"
    assert 20 <= len(truth.array.antennas) <= 30
    assert (truth.observation.end_mjd_s - truth.observation.start_mjd_s) / 60 == pytest.approx(27, abs=3)


def test_source_table_carries_each_spws_rest_frequency(generated_mous):
    source = generated_mous.ms / "SOURCE"
    spw_ids = _column(source, "SPECTRAL_WINDOW_ID")
    rest = _column(source, "REST_FREQUENCY")[0]
    for spw in generated_mous.truth.spws:
        assert np.allclose(rest[spw_ids == spw.spw_id], spw.rest_frequency_hz)


def test_data_are_raw_and_nothing_calibrated_is_left_in_the_ms(generated_mous):
    from aperture_testdata.measure import phase_scatter_deg

    tb = _casatools().table()
    tb.open(str(generated_mous.ms))
    try:
        columns = set(tb.colnames())
    finally:
        tb.close()
    assert "DATA" in columns
    assert not {"CORRECTED_DATA", "MODEL_DATA"} & columns
    phase_calibrator = generated_mous.truth.fields_with_intent(INTENT_PHASE)[0].name
    assert phase_scatter_deg(generated_mous.ms, phase_calibrator, "DATA") > 30.0


def test_weights_and_sigma_follow_the_noise_that_was_added(generated_mous):
    truth = generated_mous.truth
    sigma = _column(generated_mous.ms, "SIGMA")
    weight = _column(generated_mous.ms, "WEIGHT")
    assert np.allclose(sigma, truth.noise.sigma_jy)
    assert np.allclose(weight, 1 / truth.noise.sigma_jy**2)
    # The calibrator's spectrum is smooth, so differences of neighbouring channels are noise
    # (times sqrt 2), up to the delay slope, which shifts the result by ~1 %.
    field_id = truth.fields_with_intent(INTENT_PHASE)[0].field_id
    data = _column(generated_mous.ms, "DATA", f"FIELD_ID=={field_id} && DATA_DESC_ID==0")
    measured = np.std(np.diff(data.imag, axis=1)) / np.sqrt(2)
    assert measured == pytest.approx(truth.noise.sigma_jy, rel=0.05)


def test_applycal_with_the_packaged_tables_drops_calibrator_phase_scatter_at_least_tenfold(
    generated_mous, restored_package
):
    from aperture_testdata.measure import phase_scatter_deg

    for intent in (INTENT_PHASE, INTENT_BANDPASS):
        calibrator = generated_mous.truth.fields_with_intent(intent)[0].name
        before = phase_scatter_deg(restored_package, calibrator, "DATA")
        after = phase_scatter_deg(restored_package, calibrator, "CORRECTED_DATA")
        assert before >= 10 * after, f"{calibrator}: {before:.1f} -> {after:.2f} deg"


def test_restored_phase_calibrator_has_its_true_flux(generated_mous, restored_package):
    """fluxscale carried the flux calibrator's scale over: the phase calibrator comes out at its flux."""
    truth = generated_mous.truth
    calibrator = truth.fields_with_intent(INTENT_PHASE)[0]
    model = calibrator.components[0]
    for spw in truth.spws:
        data = _column(
            restored_package,
            "CORRECTED_DATA",
            f"FIELD_ID=={calibrator.field_id} && DATA_DESC_ID=={spw.spw_id}",
        )
        expected = (
            model.flux_jy * (spw.centre_frequency_hz / model.reference_frequency_hz) ** model.spectral_index
        )
        assert abs(np.mean(data.real)) == pytest.approx(expected, rel=0.05)


def test_restored_target_spectrum_has_the_line_where_the_truth_says(generated_mous, restored_package):
    """Vector-average the target's calibrated visibilities at the line source's position: the excess over
    the continuum is centred on the truth's line channel and is noise in the line-free channels."""
    truth = generated_mous.truth
    target = truth.fields_with_intent(INTENT_TARGET)[0]
    source = next(c for c in target.components if c.lines)
    arcsec = np.pi / 180 / 3600
    for line in source.lines:
        spw = truth.spws[line.spw_id]
        query = f"FIELD_ID=={target.field_id} && DATA_DESC_ID=={spw.spw_id}"
        data = _column(restored_package, "CORRECTED_DATA", query)
        uvw = _column(restored_package, "UVW", query)
        wavelengths = 299_792_458.0 / (spw.first_channel_hz + spw.channel_width_hz * np.arange(spw.nchan))
        # Move the phase centre onto the source (SIN offsets l, m). In the MS as CASA writes it, a source
        # at (l, m) has phase +2 pi (u l + v m) / lambda, so the rotation takes that phase away.
        path = uvw[0] * source.offset_east_arcsec * arcsec + uvw[1] * source.offset_north_arcsec * arcsec
        rotated = data * np.exp(-2j * np.pi * path[None, None, :] / wavelengths[None, :, None])
        spectrum = rotated.mean(axis=(0, 2)).real
        line_free = np.concatenate([np.arange(a, b + 1) for a, b in spw.line_free_channels])
        excess = spectrum - np.median(spectrum[line_free])
        # The weak line's peak channel wanders with the noise; its centroid much less (~0.4 channel rms).
        (first, last), *_ = [r for r in spw.line_channels if r[0] <= line.centre_channel <= r[1]]
        channels = np.arange(first, last + 1)
        centroid = np.sum(channels * excess[channels]) / np.sum(excess[channels])
        assert centroid == pytest.approx(line.centre_channel, abs=1.0)
        noise = truth.noise.sigma_jy / np.sqrt(data.shape[0] * data.shape[2])
        assert np.max(excess[channels]) > 5 * noise
        assert np.max(np.abs(excess[line_free])) < 5 * noise


def test_package_holds_the_ms_the_tables_and_the_manifest_at_its_root(generated_mous):
    with tarfile.open(generated_mous.package) as tar:
        names = tar.getnames()
    assert {n.split("/")[0] for n in names} == {generated_mous.ms.name, "cal", RESTORE_MANIFEST_NAME}
    manifest = RestoreManifest.model_validate_json(generated_mous.manifest.read_text())
    assert manifest.mous_uid == "uid://A001/X3a1/X7"
    assert manifest.measurement_sets == [generated_mous.ms.name]
    assert [entry.table for entry in manifest.apply] == [
        str(p.relative_to(generated_mous.outdir)) for p in generated_mous.calibration_tables
    ]
    for entry in manifest.apply:
        assert f"{entry.table}/table.dat" in names


def test_the_same_seed_gives_the_same_data_tables_and_truth(generated_mous, tmp_path):
    from aperture_testdata.generator import generate_mous

    again = generate_mous(tmp_path / "again", seed=1)
    assert _data_checksum(again.ms) == _data_checksum(generated_mous.ms)
    assert again.truth_file.read_text() == generated_mous.truth_file.read_text()
    for first, second in zip(generated_mous.calibration_tables, again.calibration_tables, strict=True):
        column = "FPARAM" if "FPARAM" in _casatools_colnames(first) else "CPARAM"
        assert np.array_equal(_column(first, column), _column(second, column))


def _casatools_colnames(table: Path) -> list[str]:
    tb = _casatools().table()
    tb.open(str(table))
    try:
        return list(tb.colnames())
    finally:
        tb.close()


def test_no_calibration_gives_calibrated_data_without_tables_and_seeds_change_only_the_noise(
    casa_tools, tmp_path
):
    from aperture_testdata.generator import generate_mous
    from aperture_testdata.measure import phase_scatter_deg

    first = generate_mous(
        tmp_path / "seed3",
        seed=3,
        mous_uid="uid___A001_X3a1_X8",
        calibrated=True,
        package=tmp_path / "seed3.tar",
    )
    second = generate_mous(tmp_path / "seed4", seed=4, calibrated=True)
    assert first.truth.calibrated and first.truth.gains is None and first.truth.calibration is None
    assert not (first.outdir / "cal").exists()
    manifest = RestoreManifest.model_validate_json(first.manifest.read_text())
    assert manifest.apply == [] and manifest.mous_uid == "uid://A001/X3a1/X8"
    with tarfile.open(first.package) as tar:
        assert {n.split("/")[0] for n in tar.getnames()} == {first.ms.name, RESTORE_MANIFEST_NAME}
    phase_calibrator = first.truth.fields_with_intent(INTENT_PHASE)[0].name
    assert phase_scatter_deg(first.ms, phase_calibrator, "DATA") < 2.0
    # Same sky, other seed: the difference is pure noise, sqrt(2) sigma in each part.
    difference = _column(first.ms, "DATA") - _column(second.ms, "DATA")
    assert _data_checksum(first.ms) != _data_checksum(second.ms)
    assert np.std(difference.real) == pytest.approx(np.sqrt(2) * first.truth.noise.sigma_jy, rel=0.02)
    assert abs(np.mean(difference.real)) < 0.01 * first.truth.noise.sigma_jy


def test_an_existing_mous_is_not_overwritten_unless_asked(generated_mous):
    from aperture_testdata.generator import generate_mous

    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_mous(generated_mous.outdir, seed=1)


def test_no_scratch_files_are_left_in_the_output_directory(generated_mous):
    assert sorted(p.name for p in generated_mous.outdir.iterdir()) == sorted(
        [generated_mous.ms.name, "cal", RESTORE_MANIFEST_NAME, "truth.json"]
    )


def test_truth_file_reads_back_as_the_truth_returned(generated_mous):
    assert MousTruth.read(generated_mous.truth_file) == generated_mous.truth


def test_a_mous_whose_tables_fail_the_generators_own_check_is_removed(casa_tools, tmp_path, monkeypatch):
    """The generator proves its tables on a copy; data that would fail the ingest tests are not left."""
    from aperture_testdata import calibration
    from aperture_testdata.generator import GenerationError, generate_mous

    monkeypatch.setattr(calibration, "MIN_PHASE_SCATTER_DROP", 1e9)
    outdir = tmp_path / "mous"
    with pytest.raises(GenerationError, match="needs larger gain errors or less noise"):
        generate_mous(outdir, seed=1)
    assert list(outdir.iterdir()) == []


def test_a_broken_antenna_is_in_the_data_and_recorded_in_the_truth(casa_tools, tmp_path):
    """The 'bad_antenna' scenario delivered calibrated: every antenna's calibrator visibilities sit at the
    calibrator's flux but the broken one's, which are scrambled (random phase, 5-60 % amplitude)."""
    from aperture_testdata.generator import generate_mous

    mous = generate_mous(tmp_path / "mous", seed=1, calibrated=True, scenario="bad_antenna")
    broken = mous.truth.broken_antenna
    assert broken is not None and broken.antenna == mous.truth.array.antennas[broken.antenna_index].name
    assert broken.times_mjd_s == sorted(set(_column(mous.ms, "TIME").tolist()))
    assert MousTruth.read(mous.truth_file).broken_antenna == broken

    calibrator = mous.truth.fields_with_intent(INTENT_BANDPASS)[0]
    query = f"FIELD_ID=={calibrator.field_id} && ANTENNA1!=ANTENNA2"
    data = _column(mous.ms, "DATA", query).mean(axis=1)  # (polarisation, row), channel-averaged
    on_broken = (_column(mous.ms, "ANTENNA1", query) == broken.antenna_index) | (
        _column(mous.ms, "ANTENNA2", query) == broken.antenna_index
    )
    flux = calibrator.components[0].flux_jy
    assert np.median(np.abs(data[:, ~on_broken])) == pytest.approx(flux, rel=0.1)
    assert np.median(np.abs(data[:, on_broken])) < 0.5 * flux
    assert np.degrees(np.std(np.angle(data[:, on_broken]))) > 60
