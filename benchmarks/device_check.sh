#!/usr/bin/env bash
# On the GPU machine, from the repo root (the device tool's `run` command):
#   bash benchmarks/device_check.sh [device_check.py options, e.g. --sections train --budget 240]
# Installs the carried wheels (.whl/, made by benchmarks/device_prepare.sh) into /tmp/site and
# the project with `pip install --no-deps -e .`, never touching the machine's own JAX, then runs
# benchmarks/device_check.py into $OUT (the folder that comes back) with the carried data.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-/tmp/device_check_out}
export PYTHONUNBUFFERED=1
PY=${DEVICE_PYTHON:-python3}    # the image's python3 holds its JAX
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || { echo "error: installing .whl/*.whl failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
  echo "warning: no .whl/ carried (run benchmarks/device_prepare.sh here first)" >&2
fi
# --no-build-isolation: nothing can be downloaded there; the image's setuptools builds it.
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . \
  || echo "warning: pip install -e . failed; the check imports colorjax from the tree" >&2
export PYTHONPATH=$PWD:$PYTHONPATH
DATA=()
[ -d build/device_data ] && DATA=(--data build/device_data)
exec $PY benchmarks/device_check.py "$OUT_DIR" ${DATA[@]+"${DATA[@]}"} "$@"
