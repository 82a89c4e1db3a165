"""The coordinator's real app served by uvicorn on a free port (SQLite, an in-memory store that lists
prefixes) for the `aperture campaign ...` tests, with the Coordinator the test plays the workers through on
the same database: the CLI goes its real HTTP path (--api, --token, Problem bodies) with no fake between."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aperture_contracts.enums import ErrorClass, Stage
from aperture_coordinator.api import CoordinatorServices, create_app
from aperture_coordinator.auth import ApiIdentity
from aperture_coordinator.campaigns import CampaignFeeder
from aperture_coordinator.db import Database, upgrade_database
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator
from coordinator.campaign_factories import ListingObjectStore, play_workers
from coordinator.factories import FakeClock
from support.asgi import serving
from support.cli import CliResult, run_aperture


@dataclass(frozen=True)
class Site:
    """The served API and what the test drives behind it."""

    url: str
    database: Database
    coordinator: Coordinator
    clock: FakeClock
    store: ListingObjectStore

    def play(self, failures: dict[str, tuple[ErrorClass, str]] | None = None) -> None:
        """Workers finish every job dispatched, then the feeder fills the room they left."""
        play_workers(self.coordinator, self.database, self.clock, failures=failures)
        CampaignFeeder(self.coordinator, self.store).feed()

    def campaign(self, *args: str, token: str | None) -> CliResult:
        """Run `aperture campaign ARGS` in this process against this site, untouched by the test's environment."""
        return run_aperture("campaign", *args, env={"APERTURE_API_TOKEN": token, "APERTURE_API_URL": self.url})


@contextmanager
def campaign_site(tmp_path: Path, tokens: dict[str, ApiIdentity]) -> Iterator[Site]:
    """Every stage enabled and one attempt per job: a failure fails its MOUS at once, as after its last retry."""
    settings = CoordinatorSettings(
        database_url=f"sqlite:///{tmp_path / 'coordinator.db'}", enabled_stages=list(Stage), api_tokens=tokens,
        max_attempts=1, upload_dir=tmp_path / "uploads",
    )
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    clock = FakeClock()
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(7))
    store = ListingObjectStore()
    services = CoordinatorServices(database=database, coordinator=coordinator, store=store)
    try:
        with serving(create_app(settings, services)) as url:
            yield Site(url, database, coordinator, clock, store)
    finally:
        database.dispose()
