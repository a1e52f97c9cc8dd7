#!/usr/bin/env bash
# Install jetliner_dist with its test and benchmark extras, then run the test suite.
# Works on a fresh machine with Python 3.11, pip and access to PyPI (and npm, for Azurite).
# Extra arguments go to pytest, e.g. `ci/test.sh -k benchmarks`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The bench extra brings the peers (jetliner, polars-avro) the benchmark smoke test runs;
# the ray and dask extras let tests/test_ray.py and tests/test_dask.py (and the examples
# they run) run instead of skipping.
"$PYTHON" -m pip install --progress-bar off -e ".[test,bench,ray,dask]"

# Azurite (Azure Storage's emulator, a Node.js program) serves the az:// tests on 127.0.0.1.
# It is installed outside the checkout, once per machine; without npm those tests skip.
AZURITE_VERSION=3.37.0
AZURITE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/jetliner-dist/azurite-$AZURITE_VERSION"
if [ -x "$AZURITE_HOME/node_modules/.bin/azurite-blob" ]; then
    export AZURITE_BLOB="$AZURITE_HOME/node_modules/.bin/azurite-blob"
elif command -v npm >/dev/null; then
    npm install --prefix "$AZURITE_HOME" --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION"
    export AZURITE_BLOB="$AZURITE_HOME/node_modules/.bin/azurite-blob"
else
    echo "ci/test.sh: npm not found, so Azurite is not installed and the az:// tests skip" >&2
fi

# -p no:cacheprovider: leave no .pytest_cache behind in the checkout.
# --timeout: a hung test fails instead of stalling the run.
status=0
"$PYTHON" -m pytest -q -ra -p no:cacheprovider --timeout=300 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "ci/test.sh: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
