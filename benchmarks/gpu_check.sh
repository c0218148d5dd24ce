#!/usr/bin/env bash
# Device check: the whole suite with the CuPy backend (a missing CuPy fails, not skips),
# then the GPU timings. Wheels of packages the GPU image lacks (astropy, pyuvdata, healpy,
# matvis, ...) may be placed in .whl/ (not committed) and are installed to /tmp/site.
set -uo pipefail
OUTDIR=${OUT:-/tmp/linlim_gpu_out}
mkdir -p "$OUTDIR"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi -L
python3 -c "import cupy, numpy, scipy, numba; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__)"
LINLIM_TEST_BACKEND=cupy timeout 300 python3 -m pytest -q -p no:cacheprovider -n 12 -rfE \
  tests 2>&1 | tee "$OUTDIR/gpu_tests.log" | tail -25
timeout 100 python3 benchmarks/bench_gpu.py 2>&1 | tee "$OUTDIR/gpu_bench.md"
