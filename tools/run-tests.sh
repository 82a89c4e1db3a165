#!/usr/bin/env bash
# `make test`: start the real servers the suite needs (reusing running ones), run every test, and stop
# what this run started. Under CI=true a test whose server or CASA is missing fails instead of skipping.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="$root/tools/stack"

cleanup() { "$stack/down.sh" || true; }
trap cleanup EXIT
"$stack/up.sh" --with-postgres

# The compose file is validated offline with Debian's docker-compose (client only, no engine).
"$stack/install.sh" --compose-validator

set +e
"$root/.venv/bin/pytest" "$@"
status=$?
set -e
# pytest's 5 means it collected nothing: that is a failure here, never a pass.
exit "$status"
