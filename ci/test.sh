#!/usr/bin/env bash
# Install jetliner_dist with its test and benchmark extras, then run the test suite.
# Works on a fresh machine with Python 3.11, pip and access to PyPI.
# Extra arguments go to pytest, e.g. `ci/test.sh -k benchmarks`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The bench extra brings the peers (jetliner, polars-avro) the benchmark smoke test runs;
# the ray and dask extras let tests/test_ray.py and tests/test_dask.py (and the examples
# they run) run instead of skipping.
"$PYTHON" -m pip install --progress-bar off -e ".[test,bench,ray,dask]"

# -p no:cacheprovider: leave no .pytest_cache behind in the checkout.
# --timeout: a hung test fails instead of stalling the run.
status=0
"$PYTHON" -m pytest -q -ra -p no:cacheprovider --timeout=300 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "ci/test.sh: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
