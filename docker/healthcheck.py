"""A container health check: exit 0 when the URL answers 2xx within 3 s, 1 otherwise (with the reason).

The slim base image has no curl or wget; Python is there anyway, so the HEALTHCHECKs use this.
Usage: aperture-healthcheck http://127.0.0.1:8000/healthz
"""

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: aperture-healthcheck URL", file=sys.stderr)
        return 2
    url = argv[1]
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            healthy = 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"{url}: HTTP {response.status}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
