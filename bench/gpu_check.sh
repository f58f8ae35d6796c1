#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (see README "GPU"): the GPU tests, then the trainer's
# speed on the GPU in bf16 against nanoGPT's GPT (eager and compiled). Logs go to $1 (default .).
#   bash bench/gpu_check.sh [log-dir]
set -uo pipefail
log=${1:-.}
mkdir -p "$log"
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/tinyschool-inductor}
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$log/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" 2>&1 | tee -a "$log/gpu.txt"
rc=0
# the tests that skip without a GPU, and the trainer's own tests on the same machine
timeout 300 $py -m pytest -q -p no:cacheprovider -rs tests/test_trainer_model.py \
    tests/test_trainer_train.py::test_trains_on_a_gpu_with_bf16_autocast_compile_and_fused_adamw 2>&1 | tee "$log/gpu_tests.log" || rc=1
# 7M preset, bf16 autocast, compiled; 200 steps of 128 x 256 tokens (~2 s a side on an H200: fixed costs amortised)
timeout 420 $py bench/train.py --device cuda --steps 200 --batch 128 --rounds 2 --nanogpt-compile 2>&1 | tee "$log/bench_train_cuda.log" || rc=1
exit $rc
