#!/usr/bin/env bash
# GPU check for a first GPU lease, as ONE markdown table on stdout (name | result | detail):
# benchmarks/gpu_check.py runs the CUDA tests (pytest tests/integration/test_cuda.py) while `liif repro --jobs auto`
# runs the tiny-profile pipeline beside them, then the benchmarks alone (training steps per second,
# decoding throughput, peak GPU memory). Within 8 minutes on one GPU; without CUDA a CPU subset in
# about a minute, where every CUDA row reads "no GPU". Exit status 1 when a check failed.
#
#     bash benchmarks/gpu_check.sh
#     GPU_CHECK_LOGS=DIR bash benchmarks/gpu_check.sh   # keep pytest.log, cuda-tests.xml, repro.log, gpu-check.json
#
# PYTHON names the interpreter (default: python, else python3). Wheels in .whl/ at the repository root
# (packages the machine lacks, e.g. pydantic) are installed into a temporary folder first.
set -u
started=$(date +%s)
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-$(command -v python || command -v python3)}
logs=${GPU_CHECK_LOGS:-$(mktemp -d -t gpu-check.XXXXXX)}
mkdir -p "$logs"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d -t gpu-check-site.XXXXXX)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl \
        >"$logs/wheels.log" 2>&1 && export PYTHONPATH="$PYTHONPATH:$site"
fi
exec "$PY" benchmarks/gpu_check.py --logs "$logs" --started "$started" --budget 480 "$@"
