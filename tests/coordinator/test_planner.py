"""The job graph: exact counts and edges for several targets x spws (pure; no database)."""

import re

import pytest
from aperture_contracts.enums import ImagingKind, Stage
from aperture_coordinator.planner import JobGraph, PlannedJob, plan_processing, target_slugs

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
