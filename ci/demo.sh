#!/usr/bin/env bash
# Install jetliner_dist and run the main job on its embedded default: sample Avro
# files are generated into out/, read, summarized and written back as Parquet.
# Works on a fresh machine with Python 3.11, pip and access to PyPI.
# Extra arguments go to the job, e.g. `ci/demo.sh --rows 1000000`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# fastavro writes the job's sample data; jetliner_dist itself does not need it.
"$PYTHON" -m pip install --progress-bar off -e . "fastavro>=1.9"
"$PYTHON" examples/main_job.py "$@"
