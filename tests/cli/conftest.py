"""Fixtures of the CLI tests: a fake coordinator (see cli_fakes) and a way to point the commands at it."""

from collections.abc import Callable

import pytest
from aperture_cli.client import ApertureClient
from cli_fakes import FakeCoordinator


@pytest.fixture
def coordinator() -> FakeCoordinator:
    return FakeCoordinator()


@pytest.fixture
def cli_against(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeCoordinator], None]:
    """Make the `aperture` commands talk to a fake coordinator instead of the network."""

    def patch(fake: FakeCoordinator) -> None:
        import aperture_cli.main

        def client_factory(api_url: str) -> ApertureClient:
            return ApertureClient(api_url, transport=fake.transport())

        monkeypatch.setattr(aperture_cli.main, "ApertureClient", client_factory)

    return patch
