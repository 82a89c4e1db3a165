import gzip
import io
import tarfile
from pathlib import Path

import pytest
from aperture_cli.errors import PackagingError
from aperture_cli.packaging import archive_suffix, prepare_upload
from cli_fakes import make_measurement_set


def members_of(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


def test_measurement_set_directory_is_packed_with_the_ms_directory_at_the_archive_root(
    tmp_path: Path,
) -> None:
    ms = make_measurement_set(tmp_path)

    with prepare_upload(ms) as package:
        members = members_of(package.archive)
        assert package.upload_name == "uid___A002_X1_X2.ms.tar"
        assert package.content_type == "application/x-tar"
        assert package.packed_from == ms.resolve()
        assert package.size == package.archive.stat().st_size
        assert read_member(package.archive, "uid___A002_X1_X2.ms/table.f0") == (ms / "table.f0").read_bytes()

    assert {name.split("/")[0] for name in members} == {"uid___A002_X1_X2.ms"}
    assert members["uid___A002_X1_X2.ms"].isdir()
    assert "uid___A002_X1_X2.ms/ANTENNA/table.dat" in members


def test_temporary_archive_is_removed_when_the_upload_is_done(tmp_path: Path) -> None:
    ms = make_measurement_set(tmp_path / "data")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    with prepare_upload(ms, scratch_dir=scratch) as package:
        assert package.archive.is_relative_to(scratch)
        assert package.archive.exists()

    assert list(scratch.iterdir()) == []


def test_directory_given_as_dot_is_named_after_the_measurement_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms = make_measurement_set(tmp_path)
    monkeypatch.chdir(ms)

    with prepare_upload(Path(".")) as package:
        assert package.upload_name == "uid___A002_X1_X2.ms.tar"
        assert "uid___A002_X1_X2.ms/table.dat" in members_of(package.archive)


def test_folder_of_measurement_sets_is_packed_with_each_entry_at_the_root(tmp_path: Path) -> None:
    folder = tmp_path / "uid___A001_X2fa_X2dd"
    make_measurement_set(folder, "a.ms")
    make_measurement_set(folder, "b.ms")
    (folder / "aperture-restore.json").write_text('{"kind": "aperture.restore-manifest"}')

    with prepare_upload(folder) as package:
        roots = {name.split("/")[0] for name in members_of(package.archive)}

    assert roots == {"a.ms", "b.ms", "aperture-restore.json"}


def test_symbolic_links_inside_the_ms_are_stored_as_the_files_they_point_to(tmp_path: Path) -> None:
    ms = make_measurement_set(tmp_path)
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"real bytes")
    (ms / "table.f1").symlink_to(outside)

    with prepare_upload(ms) as package:
        member = members_of(package.archive)["uid___A002_X1_X2.ms/table.f1"]
        assert member.isfile()
        assert read_member(package.archive, member.name) == b"real bytes"


def test_packing_reports_every_member(tmp_path: Path) -> None:
    ms = make_measurement_set(tmp_path)
    seen: list[str] = []

    with prepare_upload(ms, on_member=lambda member: seen.append(member.name)):
        pass

    on_disk = {f"{ms.name}/{path.relative_to(ms).as_posix()}" for path in ms.rglob("*")} | {ms.name}
    assert sorted(seen) == sorted(on_disk)


def test_directory_without_a_measurement_set_is_refused_with_what_to_point_at(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a table")

    with pytest.raises(PackagingError, match="is not a Measurement Set.*table.dat.*point at an MS directory"):
        with prepare_upload(tmp_path):
            pass


@pytest.mark.parametrize("name", ["package.tar", "package.tar.gz", "package.tgz"])
def test_archive_file_is_uploaded_as_it_is(tmp_path: Path, name: str) -> None:
    ms = make_measurement_set(tmp_path)
    archive = tmp_path / name
    compressed = name.endswith(("gz", "tgz"))
    with tarfile.open(archive, "w:gz") if compressed else tarfile.open(archive, "w") as tar:
        tar.add(ms, arcname=ms.name)

    with prepare_upload(archive) as package:
        assert package.archive == archive
        assert package.upload_name == name
        assert package.packed_from is None
    assert archive.exists()


def test_gzip_archive_gets_the_gzip_content_type(tmp_path: Path) -> None:
    archive = tmp_path / "ms.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("x.ms"), io.BytesIO(b""))

    with prepare_upload(archive) as package:
        assert package.content_type == "application/gzip"


def test_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "observation.fits"
    plain.write_bytes(b"SIMPLE  =                    T")

    with pytest.raises(PackagingError, match="not an archive this client knows"):
        with prepare_upload(plain):
            pass


def test_file_named_like_an_archive_but_not_one_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "ms.tar.gz"
    fake.write_bytes(gzip.compress(b"this is not a tar archive at all"))

    with pytest.raises(PackagingError, match="named like a .tar.gz archive but is not one"):
        with prepare_upload(fake):
            pass


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="does not exist"):
        with prepare_upload(tmp_path / "nothing.ms"):
            pass


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("a.TAR.GZ", ".tar.gz"), ("a.ms.tar", ".tar"), ("a.tar.xz", ".tar.xz"), ("a.gz", None), ("a.ms", None)],
)
def test_archive_suffix_is_recognised_case_insensitively(name: str, suffix: str | None) -> None:
    assert archive_suffix(Path(name)) == suffix
