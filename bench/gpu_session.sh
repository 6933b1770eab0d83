#!/usr/bin/env bash
# The GPU measurements behind bench/BENCHMARKS.md, in stages that each fit a 10-minute call.
#
#   bash bench/gpu_session.sh smoke|load|sweep|overhead|fullsweep|profile OUT_DIR
#
# fullsweep is the default sweep of synthetic:gpt-oss-20b on both weights paths and both caches.
# It takes longer than one call, so it is resumable: run it again and again until it says "done".
# Its results live in /tmp/gptoss-sweep (kept while the machine stays warm), seeded from a
# carried .gpu-state/sweep.tar (the previous call's, copied back) when the machine is a fresh
# one, and are packed into OUT_DIR/sweep.tar every 15 s: the device tool brings back at most 8
# files a call, and a call that has four results files and its logs goes over that (one such call's
# results were lost). DEADLINE_S (default 540) bounds one call.
#
# Expects, in the repository root (both git-ignored, never committed):
#   .whl/base/*.whl     Python packages missing from the GPU image (jsonschema and its needs)
#   .whl/kernels/*.whl  kernels + kernels-data + tomlkit, inside the window transformers declares
#   .kernels/gpt-oss-triton-kernels/  metadata.json + gpt_oss_triton_kernels/ (DESIGN.md)
# Runs `gptoss` from the source tree (no install). "nokernels" runs see neither the kernels
# wheels nor LOCAL_KERNELS; "kernels" runs see both.
set -uo pipefail
stage=${1:?stage: smoke, load, sweep, overhead, fullsweep or profile}
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
t0=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,temperature.gpu --format=csv | tee "$out/nvidia-smi.csv"
python3 -c 'import torch, transformers, triton; print("torch", torch.__version__, "transformers", transformers.__version__, "triton", triton.__version__)' | tee "$out/versions.txt"
lscpu > "$out/lscpu.txt" 2>&1; grep -m1 "Model name" "$out/lscpu.txt"
# The checkpoint in RAM when there is room: the write is disk-bound (~108 MB/s) otherwise.
shm_cache() { if [ "$(df --output=avail -B1G /dev/shm | tail -1)" -ge 20 ]; then export GPTOSS_CACHE=/dev/shm/gptoss-cache; fi; }

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
    shm_cache
    log "instrumentation overhead, bf16 static then dynamic (cache in $GPTOSS_CACHE)"
    nokernels python3 -m bench.gpu_measure overhead --quant bf16 --cache static,dynamic --pairs 6 \
        --out "$out/overhead" 2>&1 | grep -E "overhead|Error|error" | tail -5
    ;;
fullsweep)
    shm_cache
    state=/tmp/gptoss-sweep
    if [ ! -d $state ] && [ -f .gpu-state/sweep.tar ]; then
        mkdir -p $state && tar -xf .gpu-state/sweep.tar -C $state && log "seeded from .gpu-state/sweep.tar"
    fi
    mkdir -p $state
    log "checkpoint (written once per machine, outside the per-call sweep budget)"
    kernels python3 -c 'import sys; from bench.sources import resolve; print(resolve(sys.argv[1], progress=False).path)' \
        ${SWEEP_MODEL:-synthetic:gpt-oss-20b} 2>&1 | tail -1
    deadline=$((t0 + ${DEADLINE_S:-540}))
    # Prints each results file's case statuses; exit 0 when every one is complete with nothing skipped.
    sweep_done() {
        python3 - "$@" <<'PY'
import json, sys
todo = 0
for path in sys.argv[1:]:
    d = json.load(open(path))
    st = [c["status"] for c in d["cases"]]
    todo += st.count("skipped") + (0 if d["complete"] else 1)
    print(path.split("/")[-2], {s: st.count(s) for s in sorted(set(st))})
sys.exit(1 if todo else 0)
PY
    }
    pack() { tar -cf "$out/.sweep.tar.$BASHPID" -C $state . && mv "$out/.sweep.tar.$BASHPID" "$out/sweep.tar"; }
    ( while sleep 15; do pack; done ) >/dev/null 2>&1 &  # a call cut off still brings back what is done
    copier=$!
    for pc in mxfp4:dynamic bf16:dynamic bf16:static mxfp4:static; do
        path=${pc%:*} cache=${pc#*:} dir=$state/sweep-$path-$cache
        if [ -f $dir/results.json ] && sweep_done $dir/results.json > /dev/null; then continue; fi
        left=$((deadline - $(date +%s)))
        if [ $left -lt 90 ]; then log "call budget used; run again"; break; fi
        log "sweep $path $cache, ${left}s left in this call"
        s0=$(date +%s)
        kernels gptoss bench --model ${SWEEP_MODEL:-synthetic:gpt-oss-20b} --device ${SWEEP_DEVICE:-cuda} \
            --quant $path --cache $cache ${SWEEP_ARGS:-} --max-time ${left}s --resume --out $dir -q --no-report 2>&1 | grep -v Warning | tail -12
        echo "$path $cache $(( $(date +%s) - s0 ))" >> $state/wall.txt
        pack
    done
    kill $copier
    pack
    files=$(ls $state/sweep-*/results.json 2>/dev/null)
    if [ -n "$files" ] && sweep_done $files && [ "$(echo "$files" | wc -l)" -eq 4 ]; then
        echo done
    else
        echo "not done: run again"
    fi
    ;;
profile)
    shm_cache
    for path in ${PROFILE_PATHS:-bf16 mxfp4}; do
        log "profile $path dynamic and static"
        kernels python3 -m bench.gpu_measure profile --quant $path --cache dynamic,static --new-tokens 64 \
            --out "$out/profile" 2>&1 | grep -v -i warn | tail -14
    done
    ;;
esac
