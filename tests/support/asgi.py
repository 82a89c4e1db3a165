"""An ASGI app (the coordinator's) served for real by uvicorn, for tests that need a URL: the CLI, a browser."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(asgi_app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a port of its own; its base URL while it runs."""
    import uvicorn

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(asgi_app, log_level="warning", ws="none", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            host, port = listener.getsockname()
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=20)
