"""Unpacking MS packages: the layouts users send are found, and unsafe or wrong archives are refused
before anything is written outside the target folder. No CASA needed: packages are judged by their files."""

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from aperture_contracts.packaging import RESTORE_MANIFEST_NAME
from aperture_ingest.package import unpack_package
from aperture_shared.errors import BadInput, CorruptInput
from real_measurement_sets import MWA, VLA


def tree(root: Path) -> dict[str, int]:
    """Every file under root with its size: equal trees hold the same files."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def make_tar(path: Path, members: dict[str, Path], mode: str = "w") -> Path:
    """A tar at `path` with each folder or file of `members` stored under its archive name."""
    with tarfile.open(path, mode) as tar:
        for arcname, source in members.items():
            tar.add(source, arcname=arcname)
    return path


def add_member(path: Path, info: tarfile.TarInfo, content: bytes = b"") -> None:
    with tarfile.open(path, "a") as tar:
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content) if content else None)


@pytest.fixture
def vla(ms_copy, tmp_path) -> Path:
    return ms_copy(VLA, into=tmp_path / "sources")


@pytest.mark.parametrize(
    "mode, suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz")]
)
def test_a_tar_of_one_ms_unpacks_to_that_ms(vla, tmp_path, mode, suffix):
    archive = make_tar(tmp_path / f"obs{suffix}", {VLA: vla}, mode)

    package = unpack_package(archive, tmp_path / "unpacked")

    assert package.measurement_sets == [tmp_path / "unpacked" / VLA]
    assert package.root == tmp_path / "unpacked"
    assert package.manifest is None
    assert tree(package.measurement_sets[0]) == tree(vla)


def test_a_package_folder_with_two_mss_tables_and_a_manifest_is_found_one_level_down(ms_copy, vla, tmp_path):
    mwa = ms_copy(MWA, into=tmp_path / "sources")
    manifest = tmp_path / "sources" / RESTORE_MANIFEST_NAME
    manifest.write_text(json.dumps({"apply": [{"table": "cal/obs.G"}]}))
    calibration = tmp_path / "sources" / "obs.G"
    calibration.mkdir()
    (calibration / "table.dat").write_bytes(b"\x00")
    archive = make_tar(
        tmp_path / "package.tar.gz",
        {"X2dd/" + VLA: vla, "X2dd/" + MWA: mwa, "X2dd/cal/obs.G": calibration,
         f"X2dd/{RESTORE_MANIFEST_NAME}": manifest},
        "w:gz",
    )  # fmt: skip

    package = unpack_package(archive, tmp_path / "unpacked")

    root = tmp_path / "unpacked" / "X2dd"
    assert package.root == root
    assert package.measurement_sets == [root / MWA, root / VLA]  # sorted by name
    assert package.manifest == root / RESTORE_MANIFEST_NAME
    assert (root / "cal" / "obs.G" / "table.dat").is_file()


def test_a_bare_ms_directory_is_copied_and_the_original_is_left_alone(vla, tmp_path):
    before = tree(vla)

    package = unpack_package(vla, tmp_path / "unpacked")

    assert package.measurement_sets == [tmp_path / "unpacked" / VLA]
    assert tree(package.measurement_sets[0]) == before
    (package.measurement_sets[0] / "table.f0").unlink()  # later steps may change the copy freely
    assert tree(vla) == before


def test_a_folder_of_mss_is_a_package(ms_copy, tmp_path):
    folder = tmp_path / "delivery"
    ms_copy(VLA, into=folder)
    ms_copy(MWA, into=folder)

    package = unpack_package(folder, tmp_path / "unpacked")

    assert [ms.name for ms in package.measurement_sets] == [MWA, VLA]
    assert package.root == tmp_path / "unpacked"


def test_a_text_file_is_not_an_archive(tmp_path):
    path = tmp_path / "obs.tar"
    path.write_text("hello\n")
    with pytest.raises(BadInput, match=r"obs.tar is a text file, not a tar archive.*tar czf"):
        unpack_package(path, tmp_path / "unpacked")


def test_a_fits_file_is_not_an_archive(pyuvdata_data, tmp_path):
    with pytest.raises(BadInput, match="is a FITS file .*, not a tar archive"):
        unpack_package(pyuvdata_data / "day2_TDEM0003_10s_norx_1scan.uvfits", tmp_path / "unpacked")


def test_a_zero_byte_upload_is_an_empty_file(tmp_path):
    path = tmp_path / "obs.tar.gz"
    path.touch()
    with pytest.raises(BadInput, match="obs.tar.gz is an empty file, not a tar archive"):
        unpack_package(path, tmp_path / "unpacked")


def test_an_empty_tar_is_an_empty_archive(tmp_path):
    path = tmp_path / "obs.tar"
    tarfile.open(path, "w").close()
    with pytest.raises(BadInput, match="obs.tar is an empty archive: it holds no files"):
        unpack_package(path, tmp_path / "unpacked")


def test_a_zstd_archive_is_refused_with_what_to_send_instead(tmp_path):
    path = tmp_path / "obs.tar.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(64))
    with pytest.raises(BadInput, match="zstd-compressed.*gzip, bzip2 or xz"):
        unpack_package(path, tmp_path / "unpacked")


def test_a_truncated_compressed_archive_is_refused_as_damaged(vla, tmp_path):
    archive = make_tar(tmp_path / "obs.tar.gz", {VLA: vla}, "w:gz")
    with archive.open("r+b") as stream:
        stream.truncate(archive.stat().st_size // 2)
    with pytest.raises(CorruptInput, match="damaged or truncated"):
        unpack_package(archive, tmp_path / "unpacked")


def test_compressed_garbage_is_corrupt_input_not_a_wrong_kind_of_file(tmp_path):
    path = tmp_path / "obs.ms.tar"
    path.write_bytes(b"\x1f\x8b cut short by a failed copy" * 20)
    with pytest.raises(CorruptInput, match="is a gzip-compressed file that does not decompress to a tar archive"):
        unpack_package(path, tmp_path / "unpacked")


def test_an_archive_without_an_ms_says_what_it_holds(tmp_path):
    readme = tmp_path / "README.txt"
    readme.write_text("calibrated data to follow\n")
    archive = make_tar(tmp_path / "obs.tar", {"README.txt": readme})
    with pytest.raises(BadInput, match=r"holds no Measurement Set .*found: README.txt\)"):
        unpack_package(archive, tmp_path / "unpacked")


def test_two_mss_with_the_same_name_are_refused(vla, tmp_path):
    archive = make_tar(tmp_path / "obs.tar", {f"a/{VLA}": vla, f"b/{VLA}": vla})
    with pytest.raises(BadInput, match=f"several Measurement Sets named {VLA}"):
        unpack_package(archive, tmp_path / "unpacked")


def test_two_restore_manifests_are_refused(vla, tmp_path):
    manifest = tmp_path / RESTORE_MANIFEST_NAME
    manifest.write_text("{}")
    archive = make_tar(
        tmp_path / "obs.tar",
        {VLA: vla, RESTORE_MANIFEST_NAME: manifest, f"extra/{RESTORE_MANIFEST_NAME}": manifest},
    )
    with pytest.raises(BadInput, match=f"holds 2 {RESTORE_MANIFEST_NAME} files"):
        unpack_package(archive, tmp_path / "unpacked")


@pytest.mark.parametrize(
    "member, expected",
    [
        (tarfile.TarInfo("../escaped.txt"), r"'\.\./escaped.txt' points outside the package"),
        (tarfile.TarInfo("multi_1.ms/../../escaped.txt"), "points outside the package"),
        (tarfile.TarInfo("/tmp/escaped.txt"), "'/tmp/escaped.txt' has an absolute path"),
    ],
)
def test_members_with_paths_outside_the_package_are_refused(vla, tmp_path, member, expected):
    archive = make_tar(tmp_path / "obs.tar", {VLA: vla})
    add_member(archive, member, b"gotcha\n")
    target = tmp_path / "deep" / "unpacked"

    with pytest.raises(BadInput, match=expected):
        unpack_package(archive, target)

    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not Path("/tmp/escaped.txt").exists() or Path("/tmp/escaped.txt").read_text() != "gotcha\n"
    assert list(target.iterdir()) == []  # refused before anything was extracted


@pytest.mark.parametrize(
    "kind, link_name, expected",
    [
        (tarfile.SYMTYPE, "/etc/passwd", "is a link to '/etc/passwd', outside the package"),
        (tarfile.SYMTYPE, "../../outside", "is a link to '../../outside', outside the package"),
        (tarfile.LNKTYPE, "../outside", "is a link to '../outside', outside the package"),
    ],
)
def test_links_pointing_outside_the_package_are_refused(vla, tmp_path, kind, link_name, expected):
    archive = make_tar(tmp_path / "obs.tar", {VLA: vla})
    link = tarfile.TarInfo(f"{VLA}/sneaky")
    link.type = kind
    link.linkname = link_name
    add_member(archive, link)

    with pytest.raises(BadInput, match=expected):
        unpack_package(archive, tmp_path / "unpacked")


def test_a_link_inside_the_package_is_kept(vla, tmp_path):
    archive = make_tar(tmp_path / "obs.tar", {VLA: vla})
    link = tarfile.TarInfo("latest.ms")
    link.type = tarfile.SYMTYPE
    link.linkname = VLA
    add_member(archive, link)

    package = unpack_package(archive, tmp_path / "unpacked")

    assert package.measurement_sets == [tmp_path / "unpacked" / VLA]  # links are not followed into MSs
    assert os.readlink(tmp_path / "unpacked" / "latest.ms") == VLA


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_and_pipes_are_refused(vla, tmp_path, kind):
    archive = make_tar(tmp_path / "obs.tar", {VLA: vla})
    device = tarfile.TarInfo(f"{VLA}/device")
    device.type = kind
    add_member(archive, device)

    with pytest.raises(BadInput, match=f"'{VLA}/device' is a device file or pipe"):
        unpack_package(archive, tmp_path / "unpacked")


def test_a_directory_with_a_link_leading_outside_is_refused(vla, tmp_path):
    (vla / "escape").symlink_to("/etc")
    with pytest.raises(BadInput, match="escape is a link to /etc, outside the package"):
        unpack_package(vla, tmp_path / "unpacked")
