#!/usr/bin/env bash
# The GPU measurements behind bench/BENCHMARKS.md, in stages that each fit a 10-minute call.
#
#   bash bench/gpu_session.sh smoke|load|sweep|overhead OUT_DIR
#
# Expects, in the repository root (both git-ignored, never committed):
#   .whl/base/*.whl     Python packages missing from the GPU image (jsonschema and its needs)
#   .whl/kernels/*.whl  kernels + kernels-data + tomlkit, inside the window transformers declares
#   .kernels/gpt-oss-triton-kernels/  metadata.json + gpt_oss_triton_kernels/ (DESIGN.md)
# Runs `gptoss` from the source tree (no install). "nokernels" runs see neither the kernels
# wheels nor LOCAL_KERNELS; "kernels" runs see both.
set -uo pipefail
stage=${1:?stage: smoke, load or sweep}
out=${2:?output folder}
mkdir -p "$out"
root=$(pwd)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GPTOSS_CACHE=/tmp/gptoss-cache
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-base .whl/base/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-kernels .whl/kernels/*.whl || exit 1
nokernels() { PYTHONPATH="$root:/tmp/site-base" "$@"; }
kernels() {
    PYTHONPATH="$root:/tmp/site-base:/tmp/site-kernels" \
    LOCAL_KERNELS="kernels-community/gpt-oss-triton-kernels=$root/.kernels/gpt-oss-triton-kernels" "$@"
}
gptoss() { python3 -c 'import sys; from bench.cli import main; sys.argv[0] = "gptoss"; main()' "$@"; }
log() { echo "=== $(date -u +%H:%M:%S) $*" >&2; }

nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,temperature.gpu --format=csv | tee "$out/nvidia-smi.csv"
python3 -c 'import torch, transformers, triton; print("torch", torch.__version__, "transformers", transformers.__version__, "triton", triton.__version__)' | tee "$out/versions.txt"

case $stage in
smoke)
    log "check without kernels"; nokernels gptoss check --json > "$out/check-nokernels.json"; echo "exit $?"
    nokernels gptoss check 2>&1 | tail -25
    log "check with kernels";    kernels gptoss check --json > "$out/check-kernels.json"; echo "exit $?"
    kernels gptoss check 2>&1 | tail -25
    log "tiny on cuda, mxfp4 and bf16, dynamic and static"
    kernels gptoss bench --model synthetic:tiny --device cuda --quant mxfp4,bf16 --cache dynamic,static \
        --efforts low,high --lengths 16 --reps 2 --warmup 1 --out "$out/tiny" -q --no-report 2>&1 | tail -20
    log "gpu tests"; kernels python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -15
    ;;
load)
    log "write synthetic:gpt-oss-20b and load it on both paths"
    kernels python3 -m bench.gpu_load_check --model synthetic:gpt-oss-20b --out "$out/load" 2>&1 | tail -40
    log "instrumentation overhead, bf16 dynamic"
    nokernels python3 -m bench.gpu_measure overhead --quant bf16 --cache dynamic --pairs 5 --out "$out/overhead" 2>&1 | tail -3
    ;;
sweep)
    # dynamic before static (torch.compile), the riskier mxfp4+static last
    for pc in mxfp4:dynamic bf16:dynamic bf16:static mxfp4:static; do
        path=${pc%:*} cache=${pc#*:}
        log "sweep $path $cache"
        kernels gptoss bench --model synthetic:gpt-oss-20b --device cuda --quant $path --cache $cache \
            --efforts low,high --lengths 128 --reps 3 --warmup 1 --max-time 60s \
            --out "$out/sweep-$path-$cache" -q --no-report 2>&1 | grep -v Warning | tail -8
    done
    log "instrumentation overhead, bf16 static"
    nokernels python3 -m bench.gpu_measure overhead --quant bf16 --cache static --pairs 6 --out "$out/overhead" 2>&1 | tail -2
    ;;
overhead)
    # The checkpoint in RAM when there is room: the write is disk-bound (~108 MB/s) otherwise.
    if [ "$(df --output=avail -B1G /dev/shm | tail -1)" -ge 20 ]; then export GPTOSS_CACHE=/dev/shm/gptoss-cache; fi
    log "instrumentation overhead, bf16 static then dynamic (cache in $GPTOSS_CACHE)"
    nokernels python3 -m bench.gpu_measure overhead --quant bf16 --cache static,dynamic --pairs 6 \
        --out "$out/overhead" 2>&1 | grep -E "overhead|Error|error" | tail -5
    ;;
esac
