"""Fixtures for tests that use real servers, CASA and generated data (see support/requirements.py for
what happens when one is missing)."""

import importlib.util
import os
import socket
import uuid
from pathlib import Path

import pytest
from aperture_shared.settings import CommonSettings
from support.requirements import require


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("APERTURE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    require(port_open("127.0.0.1", 5672), "RabbitMQ on 127.0.0.1:5672")
    return url


@pytest.fixture(scope="session")
def s3_available() -> None:
    require(port_open("127.0.0.1", 7480), "the S3 server (Ceph RADOS gateway) on 127.0.0.1:7480")


@pytest.fixture
def storage_settings(s3_available) -> CommonSettings:
    """Settings pointing at a fresh bucket of the real S3 server."""
    return CommonSettings(s3_bucket=f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(
        "APERTURE_TEST_POSTGRES_URL", "postgresql+psycopg://aperture:aperture@127.0.0.1:5432/aperture_test"
    )
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    return url


@pytest.fixture
def amqp_vhost_url(amqp_url) -> str:
    """A fresh RabbitMQ virtual host for one test: the real broker, with no queue shared with others."""
    import urllib3

    require(port_open("127.0.0.1", 15672), "the RabbitMQ management API on 127.0.0.1:15672")
    vhost = f"aperture-test-{uuid.uuid4().hex[:10]}"
    headers = urllib3.make_headers(basic_auth="guest:guest")
    headers["content-type"] = "application/json"
    api = "http://127.0.0.1:15672/api"
    assert urllib3.request("PUT", f"{api}/vhosts/{vhost}", headers=headers).status in (201, 204)
    urllib3.request(
        "PUT", f"{api}/permissions/{vhost}/guest", headers=headers,
        body=b'{"configure": ".*", "write": ".*", "read": ".*"}',
    )
    yield f"{url_without_vhost(amqp_url)}/{vhost}"
    urllib3.request("DELETE", f"{api}/vhosts/{vhost}", headers=headers)


def url_without_vhost(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"



def require_casa() -> None:
    """Skip (locally) or fail (in CI) when casatools/casatasks are not installed."""
    installed = bool(importlib.util.find_spec("casatools") and importlib.util.find_spec("casatasks"))
    require(installed, "CASA (casatools, casatasks; `make venv` installs it)")


@pytest.fixture(scope="session")
def casa_tools():
    """casatools, configured for offline use."""
    require_casa()
    from aperture_testdata.casa_runtime import casatools_module

    return casatools_module()


@pytest.fixture(scope="session")
def pyuvdata_data() -> Path:
    """The folder of real (non-simulated) Measurement Sets that the pyuvdata 2.4.5 wheel carries; tests
    copy what they use and never change these files."""
    try:
        import pyuvdata
    except ImportError:
        require(False, "pyuvdata 2.4.5 (its wheel carries the real test Measurement Sets)")
    data = Path(pyuvdata.__file__).parent / "data"
    require((data / "multi_1.ms").is_dir(), f"the Measurement Sets of pyuvdata 2.4.5 under {data}")
    return data


@pytest.fixture(scope="session")
def generated_mous(casa_tools, tmp_path_factory: pytest.TempPathFactory):
    """A generated MOUS (real CASA, made once per session): the default scenario, seed 1, with calibration
    tables and a .tar.gz package beside it."""
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("generated-mous")
    return generate_mous(root / "mous", seed=1, package=root / "mous.tar.gz")


# -- a stage worker driven the way the coordinator drives it (tests/<stage>/test_<stage>_worker.py) ------


@pytest.fixture
def store(storage_settings):
    """The real S3 server's store, on a fresh bucket emptied after the test."""
    from aperture_shared.storage import ObjectStore

    store = ObjectStore(storage_settings)
    store.ensure_bucket()
    yield store
    store.delete_prefix("")


@pytest.fixture
def env(amqp_vhost_url, storage_settings, tmp_path) -> dict[str, str]:
    """The environment of a worker process on the test's virtual host and bucket."""
    return {
        "APERTURE_AMQP_URL": amqp_vhost_url,
        "APERTURE_S3_BUCKET": storage_settings.s3_bucket,
        "APERTURE_CASA_SCRATCH_ROOT": str(tmp_path / "scratch"),
        "APERTURE_LOG_JSON": "true",
    }


@pytest.fixture
async def broker(amqp_vhost_url):
    """A broker connection as the coordinator has it, with the whole topology declared."""
    from aperture_shared.messaging import Broker

    broker = Broker(amqp_vhost_url, "test-coordinator")
    await broker.connect()
    await broker.declare_topology()
    yield broker
    await broker.close()


@pytest.fixture
async def events(amqp_vhost_url, broker):
    """Every completion event the workers publish, as the coordinator would receive them."""
    from support.events import EventCollector

    collector = await EventCollector(amqp_vhost_url).start()
    yield collector
    await collector.close()
