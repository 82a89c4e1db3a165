"""The product manifest: what it lists, how it describes files, and what verify_manifest finds."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aperture_contracts.enums import ImagingKind
from aperture_contracts.imaging import Beam, ImageProduct
from aperture_contracts.qa import QABand, QAMetric, QAScore
from aperture_contracts.storage import ObjectRef, sha256_of_file
from aperture_export.manifest import (
    FileDescription,
    FileKind,
    Manifest,
    ManifestFile,
    ProblemKind,
    build_manifest,
    describe_from_name,
    describe_image_product,
    manifest_name,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from pydantic import ValidationError

MOUS = "uid://A001/X3a1/X7"
STEM = "uid___A001_X3a1_X7.SimGalaxy_sci"
CREATED = datetime(2026, 11, 21, 13, 6, tzinfo=UTC)
PRODUCT_FILES = [
    f"{STEM}.spw0.mfs.I.pbcor.fits", f"{STEM}.spw0.mfs.I.pb.fits", f"{STEM}.spw0.mfs.I.image.fits",
    f"{STEM}.spw0.mfs.I.residual.fits", f"{STEM}.spw0.mfs.I.mask.fits", f"{STEM}.spw0.cube.I.pbcor.fits",
    f"{STEM}.spw0_1.cont.I.tt0.pbcor.fits", f"{STEM}.spw0_1.cont.I.alpha.fits", f"{STEM}.spw0.cont.dat",
    f"{STEM}.spw0.findcont.png", "uid___A001_X3a1_X7.ingest_report.json", "casa_commands.log",
    "weblog/index.html", "weblog/static/weblog.css",
]


@pytest.fixture
def products(tmp_path: Path) -> Path:
    folder = tmp_path / "products"
    for number, name in enumerate(PRODUCT_FILES):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"content of file {number}\n".encode() * (number + 1))
    return folder


def test_manifest_lists_every_file_with_its_size_and_checksum(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)

    assert [file.name for file in manifest.files] == sorted(PRODUCT_FILES)
    for file in manifest.files:
        assert file.size_bytes == (products / file.name).stat().st_size
        assert file.sha256 == sha256_of_file(products / file.name)
    assert manifest.mous_id == MOUS and manifest.pipeline_version == "0.1.0" and manifest.created_at == CREATED


def test_manifest_round_trips_through_its_json_file(products: Path) -> None:
    descriptions = {f"{STEM}.spw0.mfs.I.pbcor.fits": FileDescription(
        kind=FileKind.IMAGE, target="SimGalaxy", spw_ids=[0], imaging_kind=ImagingKind.MFS, qa_score=0.5,
    )}
    manifest = build_manifest(products, MOUS, "0.1.0", descriptions, created_at=CREATED)

    path = write_manifest(products, manifest)

    assert path == products / "uid___A001_X3a1_X7.manifest.json" == products / manifest_name(MOUS)
    assert read_manifest(path) == manifest
    assert verify_manifest(products, manifest) == []  # the manifest does not list (or miss) itself


@pytest.mark.parametrize(
    ("name", "kind", "target", "spws", "imaging_kind"),
    [
        (f"{STEM}.spw0.mfs.I.pbcor.fits", FileKind.IMAGE, "SimGalaxy", [0], ImagingKind.MFS),
        (f"{STEM}.spw0.mfs.I.image.fits", FileKind.IMAGE, "SimGalaxy", [0], ImagingKind.MFS),
        (f"{STEM}.spw0.cube.I.pbcor.fits", FileKind.CUBE, "SimGalaxy", [0], ImagingKind.CUBE),
        (f"{STEM}.spw0.cube.I.pb.fits", FileKind.PB, "SimGalaxy", [0], ImagingKind.CUBE),
        (f"{STEM}.spw0.mfs.I.residual.fits", FileKind.RESIDUAL, "SimGalaxy", [0], ImagingKind.MFS),
        (f"{STEM}.spw0.mfs.I.mask.fits", FileKind.MASK, "SimGalaxy", [0], ImagingKind.MFS),
        (f"{STEM}.spw19_21_23.cont.I.tt0.pbcor.fits", FileKind.IMAGE, "SimGalaxy", [19, 21, 23], ImagingKind.CONT),
        (f"{STEM}.spw0_1.cont.I.alpha.fits", FileKind.AUXILIARY, "SimGalaxy", [0, 1], ImagingKind.CONT),
        ("uid___A001_X3a1_X7.NGC_2872_sci.spw1.cont.dat", FileKind.CONT_DAT, "NGC_2872", [1], None),
        (f"{STEM}.spw1.findcont.png", FileKind.PREVIEW, "SimGalaxy", [1], None),
        ("uid___A001_X3a1_X7.ingest_report.json", FileKind.REPORT, None, [], None),
        ("casa_commands.log", FileKind.CASA_COMMANDS, None, [], None),
        ("logs/imaging-t0-spw0.log", FileKind.LOG, None, [], None),
        ("uid___A001_X3a1_X7.moc.fits", FileKind.MOC, None, [], None),
        ("uid___A001_X3a1_X7.obscore.xml", FileKind.OBSCORE, None, [], None),
        ("weblog/previews/x.png", FileKind.WEBLOG, None, [], None),
        ("README.txt", FileKind.OTHER, None, [], None),
    ],
)
def test_files_are_described_from_their_alma_names(name, kind, target, spws, imaging_kind) -> None:
    described = describe_from_name(name)

    assert (described.kind, described.target, described.spw_ids, described.imaging_kind) == (
        kind, target, spws, imaging_kind
    )


def test_descriptions_of_an_image_product_carry_the_real_target_name_and_lowest_qa() -> None:
    def ref(name: str) -> ObjectRef:
        return ObjectRef(key=f"mous/uid___A001_X3a1_X7/products/{name}", sha256="0" * 64, size=1)

    stem = "uid___A001_X3a1_X7.NGC_2872_sci.spw3.cube.I"
    qa = [QAScore(score=s, message="m", metric=QAMetric(name="x", value=s)) for s in (0.95, 0.6)]
    product = ImageProduct(
        kind=ImagingKind.CUBE, target="NGC 2872", spw_ids=[3], pbcor=ref(f"{stem}.pbcor.fits"),
        image=ref(f"{stem}.image.fits"), pb=ref(f"{stem}.pb.fits"), extra=[ref(f"{stem}.residual.fits")],
        beam=Beam(major_arcsec=1, minor_arcsec=1, position_angle_deg=0), cell_arcsec=0.1, imsize=[64, 64],
        num_channels=64, frequency_min_hz=1e11, frequency_max_hz=1.1e11, rms_jy=1e-3, peak_jy=1e-2,
        theoretical_sensitivity_jy=1e-3, threshold_jy=2e-3, qa=qa,
    )

    descriptions = describe_image_product(product)

    assert {name: d.kind for name, d in descriptions.items()} == {
        f"{stem}.pbcor.fits": FileKind.CUBE, f"{stem}.image.fits": FileKind.CUBE, f"{stem}.pb.fits": FileKind.PB,
        f"{stem}.residual.fits": FileKind.RESIDUAL,
    }
    assert all(d.target == "NGC 2872" and d.spw_ids == [3] and d.qa_score == 0.6 for d in descriptions.values())


def test_qa_band_follows_the_score_in_the_alma_colours(products: Path) -> None:
    names = PRODUCT_FILES[:4]
    scores = dict(zip(names, (0.2, 0.5, 0.8, 0.95), strict=True))
    descriptions = {name: describe_from_name(name).model_copy(update={"qa_score": s}) for name, s in scores.items()}

    manifest = build_manifest(products, MOUS, "0.1.0", descriptions, created_at=CREATED)

    bands = {file.name: file.qa_band for file in manifest.files if file.name in scores}
    assert bands == dict(zip(names, [QABand.ERROR, QABand.WARNING, QABand.BELOW_STANDARD, QABand.GOOD], strict=True))
    assert all(file.qa_band is None for file in manifest.files if file.name not in scores)


def test_a_band_that_contradicts_the_score_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match"):
        ManifestFile(name="a.fits", size_bytes=1, sha256="0" * 64, kind=FileKind.IMAGE, qa_score=0.2, qa_band="green")


def test_a_file_listed_twice_is_refused(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)
    data = manifest.model_dump()
    data["files"].append(data["files"][0])

    with pytest.raises(ValidationError, match="more than once"):
        Manifest.model_validate(data)


def test_a_description_of_a_file_that_is_not_there_is_an_error(products: Path) -> None:
    with pytest.raises(ValueError, match="not-there.fits"):
        build_manifest(products, MOUS, "0.1.0", {"not-there.fits": FileDescription(kind=FileKind.IMAGE)})


def test_verify_finds_a_tampered_file(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)
    tampered = products / PRODUCT_FILES[0]
    content = bytearray(tampered.read_bytes())
    content[3] ^= 0x01  # same size, one bit different
    tampered.write_bytes(bytes(content))

    problems = verify_manifest(products, manifest)

    assert [(p.kind, p.name) for p in problems] == [(ProblemKind.CHECKSUM_MISMATCH, PRODUCT_FILES[0])]


def test_verify_finds_a_truncated_file(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)
    truncated = products / PRODUCT_FILES[5]
    truncated.write_bytes(truncated.read_bytes()[:-1])

    assert [(p.kind, p.name) for p in verify_manifest(products, manifest)] == [
        (ProblemKind.SIZE_MISMATCH, PRODUCT_FILES[5])
    ]


def test_verify_finds_an_unlisted_file(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)
    (products / "weblog" / "extra.html").write_text("<!DOCTYPE html>")

    assert [(p.kind, p.name) for p in verify_manifest(products, manifest)] == [
        (ProblemKind.UNLISTED, "weblog/extra.html")
    ]


def test_verify_finds_a_missing_file(products: Path) -> None:
    manifest = build_manifest(products, MOUS, "0.1.0", created_at=CREATED)
    (products / "casa_commands.log").unlink()

    assert [(p.kind, p.name) for p in verify_manifest(products, manifest)] == [
        (ProblemKind.MISSING, "casa_commands.log")
    ]
