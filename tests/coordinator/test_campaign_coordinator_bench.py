"""The campaign benchmark of the coordinator (tools/bench/campaign_coordinator.py) on a small campaign: every
member completes through the real feeder, coordinator and relay, the fake workers' events are all applied,
and the figures it reports add up (two events per attempt, one outbox message per attempt, one processed
event key per event, an estimate scaled from the same figures)."""

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from aperture_contracts.campaigns import MemberState
from aperture_contracts.enums import Recipe, Stage

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench"
MEMBERS = 20


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The bench module, imported as its script is run (its folder on the path, for fake_workers)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("campaign_coordinator")


def sqlite_has_dbstat(folder: Path) -> bool:
    import sqlite3

    connection = sqlite3.connect(folder / "dbstat-probe.db")
    try:
        connection.execute("SELECT COUNT(*) FROM dbstat").fetchone()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


@pytest.mark.slow
def test_a_campaign_of_20_completes_and_its_figures_add_up(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One target in a TDM-like spw and an FDM one whose cube is imaged in 3 chunks: every kind of job.
    shape = bench.MousShape(targets=1, spw_channels=(128, 600))
    config = bench.BenchConfig(MEMBERS, "sqlite", Recipe.FULL, in_flight=5, shape=shape)

    on_the_way: list = []
    result = bench.run_bench(config, f"sqlite:///{tmp_path / 'coordinator.db'}", progress=on_the_way.append)

    assert result.complete and not any(so_far.complete for so_far in on_the_way)
    assert [so_far.completed for so_far in on_the_way] == list(range(2, MEMBERS + 1, 2)), "one per tenth"
    assert result.members[MemberState.COMPLETED] == MEMBERS
    assert sum(result.members.values()) == MEMBERS
    assert result.ignored_events == 0
    assert result.jobs_per_mous == 3 + 7 * 2 + 4 + 3  # the planner's 3 + 7 M + 4 per target, and 3 chunks
    tables = result.tables
    assert tables["jobs"].rows == MEMBERS * result.jobs_per_mous
    assert tables["attempts"].rows == tables["jobs"].rows, "every job succeeded at its first attempt"
    events = result.events
    assert len(events) == 2 * tables["attempts"].rows == tables["processed_events"].rows
    assert tables["outbox"].rows == tables["attempts"].rows == sum(result.relay.handled)
    assert set(events.stages) == set(Stage)
    assert events.kind(0) == (Stage.INGEST, "started") and events.kind(1) == (Stage.INGEST, "succeeded")
    assert all(events.stages[i] == events.stages[i + 1] for i in range(0, len(events), 2)), "a job's two events"
    assert events.stages.count(Stage.EXPORT) == 2 * MEMBERS
    assert events.mous_done[-1] == MEMBERS - 1, "the last event is the last MOUS's export"
    assert sum(result.feed.handled) == MEMBERS
    assert len(result.reconcile) >= 1 and len(result.feed) >= 2

    for calls in (events.decode, events.apply, result.relay, result.reconcile, result.feed):
        assert min(calls.wall_s) > 0 and min(calls.cpu_s) >= 0
    assert events.apply.total_cpu_s > 0
    assert result.coordinator_cpu_s == pytest.approx(
        events.decode.total_cpu_s + events.apply.total_cpu_s + result.relay.total_cpu_s
        + result.reconcile.total_cpu_s + result.feed.total_cpu_s
    )
    assert 0 < result.coordinator_wall_s <= result.wall_s, "the fake workers' time is outside the calls"
    assert result.database_bytes > result.empty_database_bytes > 0
    # Sizes come from SQLite's dbstat table, which not every build has: once casatools is imported, the
    # process may use casacore's own SQLite, built without it (the whole suite imports casatools first).
    sized = sqlite_has_dbstat(tmp_path)
    assert all(table.bytes is not None for table in tables.values()) == sized
    assert result.server_cpu_s is None  # SQLite runs in the coordinator's process

    scaled = bench.estimate(result, worker_mous_per_hour=60.0)
    per_mous = len(events) / MEMBERS
    assert scaled.events == round(per_mous * 10_000)
    assert scaled.events_per_s_needed == pytest.approx(60.0 * per_mous / 3600)
    assert scaled.duration_h == pytest.approx(10_000 / 60.0)
    assert scaled.event_cpu_h > 0 and scaled.reconcile_cpu_h >= 0 and scaled.feed_cpu_h >= 0
    assert scaled.cpu_h == pytest.approx(scaled.event_cpu_h + scaled.reconcile_cpu_h + scaled.feed_cpu_h)
    assert scaled.database_bytes > result.database_bytes
    if sized:  # the pruned share is estimated from the outbox's and processed events' sizes
        assert scaled.pruned_bytes is not None and 0 < scaled.pruned_bytes < scaled.database_bytes
    else:
        assert scaled.pruned_bytes is None
    assert 0 < scaled.core_share
    assert scaled.events_per_s_sustained > scaled.events_per_s_needed > 0

    growing = bench.estimate(result, worker_mous_per_hour=60.0, growing=True)
    assert growing.event_factor >= 1 and growing.reconcile_factor >= 1
    assert growing.event_cpu_h == pytest.approx(scaled.event_cpu_h * growing.event_factor)
    assert growing.database_bytes == scaled.database_bytes and growing.events == scaled.events

    saved = bench.RESULT.validate_json(bench.RESULT.dump_json(result))
    assert bench.estimate(saved, worker_mous_per_hour=60.0) == scaled, "a saved run reports the same"

    bench.print_report(saved, 60.0)
    printed = capsys.readouterr().out
    assert f"members: {MEMBERS} completed; events applied {len(events)} " in printed
    assert "event: apply_event" in printed and "reconcile pass" in printed and "feeder pass" in printed
    assert "estimate for 10,000 MOUS" in printed
