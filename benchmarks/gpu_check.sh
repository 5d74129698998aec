#!/usr/bin/env bash
# The GPU check (a few minutes on one GPU): CUDA inference of every bundle with and without AMP,
# 20-step training runs with AMP (real and half synthetic), 30 s of mrsr selfsr with AMP, the CUDA-only
# tests, and two-process NCCL DDP when two GPUs exist.
# Run it from an environment where mrsr and its test extra are installed:
#     bash benchmarks/gpu_check.sh            (outputs in a temporary folder, or in $OUT if set)
# or inside the container image, where it lies in /opt/mrsr/benchmarks (GPU=1 bash benchmarks/container_check.sh).
# DEVICE=cpu runs the same checks on the CPU (to try the script where there is no GPU).
# It prints one line per check and ends with "gpu check: N passed, M failed"; the exit status is 1
# if any check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
device=${DEVICE:-cuda}
out=${OUT:-$(mktemp -d)}/gpu_check
mkdir -p "$out"
passed=0
failed=0

check() {  # check NAME COMMAND...: run it, time it, keep its log
    local name=$1 start end
    shift
    start=$(date +%s%N)
    if "$@" >"$out/$name.log" 2>&1; then
        passed=$((passed + 1))
        end=$(date +%s%N)
        printf 'ok    %-28s %6d ms\n' "$name" $(((end - start) / 1000000))
    else
        failed=$((failed + 1))
        printf 'FAIL  %-28s (log: %s)\n' "$name" "$out/$name.log"
        tail -n 5 "$out/$name.log" | sed 's/^/      /'
    fi
}

$PY - "$device" <<'PY' || exit 1
import sys
import torch
if sys.argv[1] == "cpu":
    print(f"torch {torch.__version__} on the CPU (DEVICE=cpu)")
    raise SystemExit(0)
if not torch.cuda.is_available():
    raise SystemExit("gpu check: CUDA is not available to this torch build; nothing to check")
names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {len(names)} GPU(s): {', '.join(names)}")
PY

sample=$($PY -c "from mrsr.data import sample_path; print(sample_path())")
bundles=$($PY -c "from mrsr.networks import specs; print(' '.join(s.bundle for s in specs() if s.bundle))")
for b in $bundles; do
    check "infer_${b}_fp32" $PY -m mrsr infer "$sample" -o "$out/${b}_fp32.nii.gz" --bundle "$b" --scale 2 --device "$device"
    check "infer_${b}_amp" $PY -m mrsr infer "$sample" -o "$out/${b}_amp.nii.gz" --bundle "$b" --scale 2 --device "$device" --amp
    # AMP must change the image by rounding only: PSNR of AMP against fp32 over the fp32 range
    check "amp_matches_fp32_${b}" $PY - "$out/${b}_fp32.nii.gz" "$out/${b}_amp.nii.gz" <<'PY'
import sys
import nibabel as nib
import numpy as np
a, b = (np.asarray(nib.load(p).dataobj, dtype=np.float64) for p in sys.argv[1:3])
psnr = 10 * np.log10((a.max() - a.min()) ** 2 / max(np.mean((a - b) ** 2), 1e-30))
print(f"AMP vs fp32: {psnr:.1f} dB")
sys.exit(0 if psnr > 40 else 1)
PY
done

manifest="$out/manifest.json"
printf '{"training": [{"image": "pkg:mrsr/data/sample_t1_head.nii.gz"}], "validation": [{"image": "pkg:nibabel/tests/data/anatomical.nii"}]}\n' >"$manifest"
train_args=(--network msrn --preset small --manifest "$manifest" --patch-size 32 --batch-size 8 --samples-per-epoch 80 --iterations 20 --device "$device" --amp --no-progress)
check "train_20_steps_amp" $PY -m mrsr train "${train_args[@]}" --out "$out/train"
check "train_20_steps_synthetic" $PY -m mrsr train "${train_args[@]}" --synthetic 0.5 --out "$out/train_synthetic"
# self-supervised through-plane SR: 4 mm box slices of the T1 sample's first axis, 30 s of training with AMP
check "selfsr_degrade" $PY -m mrsr degrade "$sample" -o "$out/thick.nii.gz" --axes 0 --scale 4 --slice-profile box
check "selfsr_30s_amp" $PY -m mrsr selfsr "$out/thick.nii.gz" -o "$out/iso.nii.gz" --time 30 --device "$device" --amp
if [ -d tests ] && $PY -c "import pytest" 2>/dev/null; then
    check "cuda_tests" $PY -m pytest -q -p no:cacheprovider -k "cuda or gpu" tests/test_inference.py tests/transforms/test_kspace.py tests/test_benchmark.py
else
    echo "skip  cuda_tests                    (no tests/ or no pytest here: the container image has neither)"
fi
if [ "$device" != cpu ] && [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    check "ddp_nccl_2_gpus" $PY -m torch.distributed.run --standalone --nproc_per_node=2 -m mrsr train "${train_args[@]}" --out "$out/ddp"
else
    echo "skip  ddp_nccl_2_gpus               (fewer than two GPUs)"
fi
echo "gpu check: $passed passed, $failed failed (outputs and logs in $out)"
[ "$failed" -eq 0 ]
