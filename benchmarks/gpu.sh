#!/usr/bin/env bash
# Every GPU figure in benchmarks/RESULTS.md and the test suite on CUDA, in about five minutes on a
# fresh machine with one CUDA GPU and the package installed (pip install -e ".[test]"):
#
#     bash benchmarks/gpu.sh [OUT_DIR]        # logs in OUT_DIR (default runs/gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
start=$SECONDS
part() { printf '\n## %s (at %d s)\n' "$1" $((SECONDS - start)); }

part "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

part "throughput and time split at 64 px (benchmarks/env.py)"
timeout 80 python benchmarks/env.py --device cuda --image-size 64 --num-envs 1024 2048 --steps 4096 \
    --caster torch --profile 2>&1 | tee "$out/env64.md"
part "throughput and time split at 224 px"
timeout 80 python benchmarks/env.py --device cuda --image-size 224 --num-envs 256 1024 --steps 2048 \
    --caster torch --profile 2>&1 | tee "$out/env224.md"

part "the same pictures: CUDA and the torch caster against the CPU and Embree (benchmarks/equivalence.py)"
timeout 60 python benchmarks/equivalence.py --device cuda --samples 128 2>&1 | tee "$out/equivalence.md"

part "one quick run of the rounds on the GPU (train/run_agent.py --quick)"
timeout 90 python train/run_agent.py --quick --device cuda --out "$out/quick" > "$out/quick.log" 2>&1
echo "exit $?"; tail -n 20 "$out/quick.log"

part "the test suite on CUDA"
OMP_NUM_THREADS=2 timeout 200 python -m pytest -n 8 --timeout 150 --durations=15 -q -p no:cacheprovider ${PYTEST_ARGS:-} \
    > "$out/tests.log" 2>&1
echo "exit $?"; tail -n 45 "$out/tests.log"
part "done"
