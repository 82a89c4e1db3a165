"""The job graph: exact counts and edges for several targets x spws (pure; no database)."""

import math
import re

import pytest
from aperture_contracts.enums import ImagingKind, Recipe, Stage
from aperture_coordinator.planner import JobGraph, PlannedJob, channel_chunks, plan_processing, target_slugs

from .factories import MOUS_ID, grid_metadata, metadata_for

JOB_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")  # aperture_contracts.ids.JobId
GRIDS = [(0, 3), (1, 1), (1, 4), (2, 3), (3, 2), (5, 7)]


def closure(graph: JobGraph, job_id: str) -> set[str]:
    """Every job `job_id` depends on, directly or not."""
    seen: set[str] = set()
    stack = list(graph.job(job_id).depends_on)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.job(current).depends_on)
    return seen


def test_before_ingest_the_graph_is_the_ingest_job_alone() -> None:
    graph = plan_processing(MOUS_ID, 1, None)
    assert graph.jobs == (PlannedJob("r1.ingest", Stage.INGEST),)


@pytest.mark.parametrize(("targets", "spws"), GRIDS)
def test_job_count_is_3_plus_7nm_plus_4n(targets: int, spws: int) -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    assert len(graph) == 3 + 7 * targets * spws + 4 * targets


@pytest.mark.parametrize(("targets", "spws"), GRIDS)
def test_jobs_per_stage_and_kind(targets: int, spws: int) -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    n, m = targets, spws
    assert len(graph.by_stage(Stage.INGEST)) == 1
    assert len(graph.by_stage(Stage.CALIBRATION)) == 1
    assert len(graph.by_stage(Stage.FINDCONT)) == n * m
    assert len(graph.by_stage(Stage.IMAGING, ImagingKind.CONTSUB.value)) == n
    assert len(graph.by_stage(Stage.IMAGING, ImagingKind.MFS.value)) == n * m
    assert len(graph.by_stage(Stage.IMAGING, ImagingKind.CONT.value)) == n
    assert len(graph.by_stage(Stage.IMAGING, ImagingKind.CUBE.value)) == n * m
    assert len(graph.by_stage(Stage.PREVIEWS)) == n * (2 * m + 1)
    assert len(graph.by_stage(Stage.FOOTPRINT)) == n * (2 * m + 1)
    assert len(graph.by_stage(Stage.EXPORT)) == 1


@pytest.mark.parametrize(("targets", "spws"), GRIDS)
def test_edge_count_is_1_plus_13nm_plus_4n(targets: int, spws: int) -> None:
    # calibration 1; findcont NM; contsub NM; mfs NM; cont NM; cube NM; previews and footprint 2N(2M+1);
    # export -> every previews and footprint job 2N(2M+1)  (with no targets: export -> calibration).
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    expected = 1 + 13 * targets * spws + 4 * targets if targets else 2
    assert len(graph.edges()) == expected


def test_edges_of_one_target_with_two_spws_exactly() -> None:
    graph = plan_processing(MOUS_ID, 1, metadata_for({"NGC 1068": [25, 27]}))
    cube, mfs, cont, contsub = "cube.ngc_1068", "mfs.ngc_1068", "cont.ngc_1068", "contsub.ngc_1068"
    images = [f"{mfs}.spw25", f"{mfs}.spw27", cont, f"{cube}.spw25", f"{cube}.spw27"]
    expected = {
        ("r1.calibration", "r1.ingest"),
        ("r1.findcont.ngc_1068.spw25", "r1.calibration"),
        ("r1.findcont.ngc_1068.spw27", "r1.calibration"),
        (f"r1.imaging.{contsub}", "r1.findcont.ngc_1068.spw25"),
        (f"r1.imaging.{contsub}", "r1.findcont.ngc_1068.spw27"),
        (f"r1.imaging.{mfs}.spw25", "r1.findcont.ngc_1068.spw25"),
        (f"r1.imaging.{mfs}.spw27", "r1.findcont.ngc_1068.spw27"),
        (f"r1.imaging.{cont}", "r1.findcont.ngc_1068.spw25"),
        (f"r1.imaging.{cont}", "r1.findcont.ngc_1068.spw27"),
        (f"r1.imaging.{cube}.spw25", f"r1.imaging.{contsub}"),
        (f"r1.imaging.{cube}.spw27", f"r1.imaging.{contsub}"),
        *((f"r1.previews.{image}", f"r1.imaging.{image}") for image in images),
        *((f"r1.footprint.{image}", f"r1.imaging.{image}") for image in images),
        *(("r1.export", f"r1.{stage}.{image}") for stage in ("previews", "footprint") for image in images),
    }
    assert graph.edges() == expected
    assert len(graph) == 3 + 7 * 2 + 4


@pytest.mark.parametrize(("targets", "spws"), [(1, 1), (2, 3), (4, 4)])
def test_fan_out_edges_for_every_target_and_spw(targets: int, spws: int) -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    for index in range(targets):
        slug = f"target_{index + 1}"
        findcont = {job.job_id for job in graph.by_stage(Stage.FINDCONT) if f".{slug}." in job.job_id}
        assert len(findcont) == spws
        assert set(graph.job(f"r1.imaging.contsub.{slug}").depends_on) == findcont
        assert set(graph.job(f"r1.imaging.cont.{slug}").depends_on) == findcont
        for job in graph.by_stage(Stage.IMAGING, "mfs"):
            if f".{slug}." in job.job_id:
                assert job.depends_on == (f"r1.findcont.{slug}.spw{job.spw_id}",)
        for job in graph.by_stage(Stage.IMAGING, "cube"):
            if f".{slug}." in job.job_id:
                assert job.depends_on == (f"r1.imaging.contsub.{slug}",)


@pytest.mark.parametrize(("targets", "spws"), GRIDS)
def test_export_depends_on_every_other_job(targets: int, spws: int) -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    assert graph.jobs[-1].job_id == "r1.export"
    assert closure(graph, "r1.export") == set(graph.job_ids) - {"r1.export"}


def test_every_previews_and_footprint_job_follows_one_image_job() -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(2, 2))
    image_jobs = {job.job_id for job in graph.by_stage(Stage.IMAGING) if job.kind != "contsub"}
    for stage in (Stage.PREVIEWS, Stage.FOOTPRINT):
        followed = [job.depends_on for job in graph.by_stage(stage)]
        assert sorted(dep for (dep,) in followed) == sorted(image_jobs)


def test_job_ids_are_deterministic_readable_and_valid() -> None:
    metadata = metadata_for({"NGC 1068": [25], "Orion KL (main)": [25]})
    first, second = plan_processing(MOUS_ID, 1, metadata), plan_processing(MOUS_ID, 1, metadata)
    assert first == second
    assert "r1.imaging.cube.ngc_1068.spw25" in first.job_ids
    assert "r1.imaging.cube.orion_kl_main.spw25" in first.job_ids
    assert "r1.footprint.cont.orion_kl_main" in first.job_ids
    assert all(JOB_ID.match(job_id) for job_id in first.job_ids)


def test_a_rerun_plans_jobs_with_its_own_run_number() -> None:
    graph = plan_processing(MOUS_ID, 2, grid_metadata(1, 1))
    assert all(job_id.startswith("r2.") for job_id in graph.job_ids)
    with pytest.raises(ValueError, match="run numbers start at 1"):
        plan_processing(MOUS_ID, 0, None)


def test_target_names_that_read_alike_get_distinct_stable_slugs() -> None:
    slugs = target_slugs(["NGC 1068", "ngc_1068", "M 82"])
    assert slugs["M 82"] == "m_82"
    assert slugs["NGC 1068"] != slugs["ngc_1068"]
    assert slugs["NGC 1068"].startswith("ngc_1068-")
    assert target_slugs(["ngc_1068", "NGC 1068"]) == {k: slugs[k] for k in ("ngc_1068", "NGC 1068")}


def test_very_long_and_symbol_only_target_names_still_make_valid_ids() -> None:
    metadata = metadata_for({"A" * 300: [17], "***": [17]})
    graph = plan_processing(MOUS_ID, 1, metadata)
    assert all(JOB_ID.match(job_id) for job_id in graph.job_ids)
    assert max(len(job_id) for job_id in graph.job_ids) < 100
    assert "r1.findcont.target.spw17" in graph.job_ids


def test_targets_fan_out_over_the_spws_they_were_observed_in() -> None:
    metadata = metadata_for({"Near": [17, 19, 21], "Far": [21], "Unseen": [23]}, science_spws=[17, 19, 21])
    graph = plan_processing(MOUS_ID, 1, metadata)
    assert len(graph) == 3 + (7 * 3 + 4) + (7 * 1 + 4)
    assert {job.spw_id for job in graph.by_stage(Stage.FINDCONT) if job.target == "Far"} == {21}
    assert not [job for job in graph.jobs if job.target == "Unseen"]


def test_a_graph_refuses_a_job_that_depends_on_one_not_planned_before_it() -> None:
    with pytest.raises(ValueError, match="not planned before it"):
        JobGraph((PlannedJob("r1.calibration", Stage.CALIBRATION, depends_on=("r1.ingest",)),))
    with pytest.raises(ValueError, match="planned twice"):
        JobGraph((PlannedJob("r1.ingest", Stage.INGEST), PlannedJob("r1.ingest", Stage.INGEST)))


# -- cubes in channel chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "chunk_size", "sizes"),
    [
        (64, 32, [32, 32]),
        (64, 0, []),  # chunking off
        (64, 64, []),  # not larger than one chunk: one job
        (128, 256, []),
        (65, 32, [21, 22, 22]),
        (480, 256, [240, 240]),
        (1920, 256, [240] * 8),
        (3840, 256, [256] * 15),
        (7, 1, [1] * 7),
    ],
)
def test_channel_chunks_cover_the_cube_exactly_in_near_equal_contiguous_ranges(
    channels: int, chunk_size: int, sizes: list[int]
) -> None:
    chunks = channel_chunks(channels, chunk_size)
    assert [chunk.num_channels for chunk in chunks] == sizes
    if not chunks:
        return
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.count for chunk in chunks} == {len(chunks)}
    assert {chunk.total_channels for chunk in chunks} == {channels}
    assert chunks[0].first_channel == 0 and chunks[-1].end_channel == channels
    assert all(after.first_channel == before.end_channel for before, after in zip(chunks, chunks[1:], strict=False))
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= chunk_size


def test_a_negative_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError, match="0 for no chunking"):
        channel_chunks(64, -1)


def test_a_large_cube_is_planned_as_chunk_jobs_joined_by_its_cube_job() -> None:
    # metadata_for gives every spw 128 channels: 50 per chunk makes 3 chunks (42, 43, 43 channels).
    graph = plan_processing(MOUS_ID, 1, metadata_for({"NGC 1068": [25, 27]}), cube_chunk_channels=50)
    contsub = "r1.imaging.contsub.ngc_1068"
    for spw in (25, 27):
        chunk_ids = [f"r1.imaging.cube_chunk.ngc_1068.spw{spw}.c{number}of3" for number in (1, 2, 3)]
        chunks = [graph.job(job_id) for job_id in chunk_ids]
        assert all(chunk.kind == "cube_chunk" and chunk.spw_id == spw for chunk in chunks)
        assert all(chunk.depends_on == (contsub,) for chunk in chunks)
        assert [chunk.params["chunk"] for chunk in chunks] == [
            {"index": 0, "count": 3, "first_channel": 0, "num_channels": 42, "total_channels": 128},
            {"index": 1, "count": 3, "first_channel": 42, "num_channels": 43, "total_channels": 128},
            {"index": 2, "count": 3, "first_channel": 85, "num_channels": 43, "total_channels": 128},
        ]
        # The cube job joins the chunks; what follows the cube is as for a cube made in one job.
        cube = graph.job(f"r1.imaging.cube.ngc_1068.spw{spw}")
        assert cube.kind == "cube" and cube.depends_on == tuple(chunk_ids)
        assert graph.job(f"r1.previews.cube.ngc_1068.spw{spw}").depends_on == (cube.job_id,)
        assert graph.job(f"r1.footprint.cube.ngc_1068.spw{spw}").depends_on == (cube.job_id,)
    assert not graph.by_stage(Stage.PREVIEWS, "cube_chunk") and not graph.by_stage(Stage.FOOTPRINT, "cube_chunk")
    assert closure(graph, "r1.export") == set(graph.job_ids) - {"r1.export"}
    assert all(JOB_ID.match(job_id) for job_id in graph.job_ids)


@pytest.mark.parametrize(("targets", "spws", "chunks"), [(1, 1, 2), (2, 3, 2), (3, 2, 5), (1, 4, 128)])
def test_chunking_adds_k_jobs_and_2k_minus_1_edges_per_cube(targets: int, spws: int, chunks: int) -> None:
    whole = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws))
    chunked = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws), cube_chunk_channels=math.ceil(128 / chunks))
    cubes = targets * spws
    assert len(chunked.by_stage(Stage.IMAGING, ImagingKind.CUBE_CHUNK.value)) == cubes * chunks
    assert len(chunked.by_stage(Stage.IMAGING, ImagingKind.CUBE.value)) == cubes
    assert len(chunked) == len(whole) + cubes * chunks
    assert len(chunked.edges()) == len(whole.edges()) + cubes * (2 * chunks - 1)
    # Everything else is the same graph.
    outside = {job.job_id for job in chunked.jobs if job.kind != ImagingKind.CUBE_CHUNK.value}
    assert outside == set(whole.job_ids)
    for job in whole.jobs:
        if (job.stage, job.kind) != (Stage.IMAGING, ImagingKind.CUBE.value):
            assert chunked.job(job.job_id).depends_on == job.depends_on, job.job_id


def test_only_spws_larger_than_a_chunk_are_chunked() -> None:
    metadata = metadata_for({"NGC 1068": [25, 27]})
    wide = metadata.measurement_sets[0].spectral_windows[1].model_copy(update={"num_channels": 3840})
    ms = metadata.measurement_sets[0].model_copy(
        update={"spectral_windows": [metadata.measurement_sets[0].spectral_windows[0], wide]}
    )
    graph = plan_processing(MOUS_ID, 1, metadata.model_copy(update={"measurement_sets": [ms]}),
                            cube_chunk_channels=256)
    assert {job.spw_id for job in graph.by_stage(Stage.IMAGING, "cube_chunk")} == {wide.spw_id}
    assert len(graph.by_stage(Stage.IMAGING, "cube_chunk")) == 15
    assert graph.job("r1.imaging.cube.ngc_1068.spw25").depends_on == ("r1.imaging.contsub.ngc_1068",)


@pytest.mark.parametrize(("targets", "spws"), GRIDS)
def test_the_quicklook_recipe_makes_continuum_images_only_3_plus_3nm_plus_2n_jobs(targets: int, spws: int) -> None:
    graph = plan_processing(MOUS_ID, 1, grid_metadata(targets, spws), recipe=Recipe.QUICKLOOK)
    n, m = targets, spws
    assert len(graph) == 3 + 3 * n * m + 2 * n
    kinds = {job.kind for job in graph.by_stage(Stage.IMAGING)}
    assert kinds <= {ImagingKind.MFS.value, ImagingKind.CONT.value}
    assert len(graph.by_stage(Stage.PREVIEWS)) == n * (m + 1) and not graph.by_stage(Stage.FOOTPRINT)
    (export,) = graph.by_stage(Stage.EXPORT)
    assert set(export.depends_on) == {job.job_id for job in graph.by_stage(Stage.PREVIEWS)} or n == 0
