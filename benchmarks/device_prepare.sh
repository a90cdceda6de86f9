#!/usr/bin/env bash
# Run HERE (not on the GPU machine), once, from the repo root of the checkout the session
# was started in (the device tool sends that one):
#   bash benchmarks/device_prepare.sh [SHARED_DATA_DIR]
# 1. downloads the pure-Python/manylinux wheels the device image lacks (Python 3.12, x86-64)
#    into .whl/ (ignored): grain and its array-record and portpicker, dm-pix, ml-collections,
#    tensorboardX, at the versions colorjax is tested with here;
# 2. writes build/device_data/ (ignored): JPEGs made from ../shared/data (photos, Sintel frames,
#    frames of the three clips), short side 288 px, split train/test by shot or film
#    (benchmarks/device_check.py prepare_data);
# 3. checks that the tree plus both folders fit the device's 64 MiB carry limit, and prints
#    the exact `run` call to make.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-$(cd .. && pwd)/shared/data}
# A Python with the project's dependencies and PyAV (for the clips): $PYTHON, else ./.venv.
PY=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
WHEELS="grain==0.2.18 array-record==0.8.6 portpicker==1.6.0 dm-pix==0.4.5 ml-collections==1.1.0 tensorboardX==2.6.5"
rm -rf .whl && mkdir -p .whl
$PY -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  --platform any -d .whl $WHEELS
ls .whl
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} $PY benchmarks/device_check.py --prepare build/device_data \
  --source "$SRC"
tree_b=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null \
           | tail -1 | cut -f1)
whl=$(du -sb .whl | cut -f1)
data=$(du -sb build/device_data | cut -f1)
total=$(( (tree_b + whl + data) / 1048576 ))
echo "carry: tree $((tree_b / 1024)) KiB + .whl $((whl / 1024)) KiB + build/device_data $((data / 1024)) KiB = ${total} MiB of 64"
if [ "$total" -ge 62 ]; then echo "error: over the device's 64 MiB limit" >&2; exit 1; fi
cat <<'CALL'
Now, in the session with a GPU, one call (about 8 minutes; the report comes back in its files):
  run(command="bash benchmarks/device_check.sh",
      carry=[".whl", "build/device_data"], timeout_s=540)
then read report.md under files_at; give_back unless you rerun at once. A rerun of part:
  run(command="bash benchmarks/device_check.sh --sections train --budget 240",
      carry=[".whl", "build/device_data"], timeout_s=300)
CALL
