#!/usr/bin/env bash
# The container check (minutes): build the image from the Dockerfile with podman or docker, from a local base
# and offline, then run mrsr in it the way a hospital server would -- data mounted read-only, outputs on a
# writable mount, an unprivileged --user, a read-only root file system -- and compare every output with the
# same command run outside the container.
#
#     bash benchmarks/container_check.sh          (from an environment where mrsr is installed)
#
# Steps in the container: `mrsr demo`, `mrsr infer --bundle` on a NIfTI file and on a DICOM series,
# `python -m monai.bundle run` with a bundle's inference.json, and a short `mrsr selfsr`. Checks: same voxels
# within 1e-5 and the same affine as outside, every output file belongs to the --user, the data mount is
# unchanged, and nothing else was written (the root file system is read-only; /tmp is a tmpfs that goes with
# the container). With GPU=1 it also runs benchmarks/gpu_check.sh inside the image on the host's GPUs.
#
# Settings (environment):
#   ENGINE  podman or docker (default: podman if found, else docker)
#   BASE    base image (default: localhost/debian-py:bookworm, made here with mmdebstrap when missing)
#   PYTHON  the Python with mrsr installed, for the runs outside and the wheelhouse (default: python)
#   RUN_AS  UID:GID of the container's user (default: the caller's; 10001:10001 when the caller is root)
#   IMAGE   tag of the image built (default: localhost/mrsr:check)
#   KEEP    1 keeps the work folder (default: removed at the end unless a check failed)
#   GPU=1   also run benchmarks/gpu_check.sh in the image (--gpus all with docker, CDI nvidia.com/gpu=all with podman)
#
# It prints the image size, each step's time inside and outside, one line per comparison and ends with
# "container check: N passed, M failed"; the exit status is 1 if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python}
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
BASE=${BASE:-localhost/debian-py:bookworm}
IMAGE=${IMAGE:-localhost/mrsr:check}
work=$(mktemp -d "${TMPDIR:-/tmp}/mrsr-container-check.XXXXXX")
passed=0
failed=0

say() { printf '%s\n' "$*"; }
die() { say "container check: $*" >&2; exit 2; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

command -v "$ENGINE" >/dev/null || die "neither podman nor docker is installed (Debian: apt-get install podman runc)"
$PY -c "import mrsr" 2>/dev/null || die "$PY cannot import mrsr: activate the environment where mrsr is installed"

engine=("$ENGINE")
if [ "$(basename "$ENGINE")" = podman ]; then
    # This machine's kernel refuses podman's default ulimits and crun; the settings go in a private config file,
    # so nothing of the host's configuration changes.
    conf="$work/containers.conf"
    printf '[containers]\ndefault_ulimits = []\n' >"$conf"
    [ -n "${CONTAINERS_CONF:-}" ] && [ -f "$CONTAINERS_CONF" ] && cat "$CONTAINERS_CONF" >>"$conf"
    export CONTAINERS_CONF="$conf"
    command -v runc >/dev/null && engine+=(--runtime runc)
fi

# --- the base image ---------------------------------------------------------------------------------------
if ! "${engine[@]}" image exists "$BASE" 2>/dev/null && ! "${engine[@]}" image inspect "$BASE" >/dev/null 2>&1; then
    [ "$BASE" = localhost/debian-py:bookworm ] || die "base image $BASE not found: build or load it first"
    command -v mmdebstrap >/dev/null || die "no base image and no mmdebstrap to make one (apt-get install mmdebstrap)"
    say "making the base image $BASE from Debian's packages (mmdebstrap, about a minute)"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/base.tar"
    "${engine[@]}" import "$work/base.tar" "$BASE" >/dev/null
    rm -f "$work/base.tar"
fi

# --- the build context: the working tree's files and a wheelhouse of this environment's versions ------------
ctx="$work/context"
mkdir -p "$ctx"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -f "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$ctx"
wheels=${MRSR_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/mrsr/wheelhouse}
mkdir -p "$wheels"
# the image gets exactly the versions installed here (torch included), so outputs can be compared voxel by voxel
$PY -m pip freeze --exclude-editable | grep -v -i '^mrsr\b' >"$work/constraints.txt"
torch_req=$($PY -c "import torch; print('torch==' + torch.__version__)")
start=$(date +%s%N)
$PY -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$wheels" --constraint "$work/constraints.txt" \
    "$ctx" "$torch_req" setuptools wheel >"$work/wheelhouse.log" 2>&1 || { tail -5 "$work/wheelhouse.log"; die "pip wheel failed"; }
mkdir -p "$ctx/wheelhouse"
for w in "$wheels"/*.whl; do
    case "$(basename "$w")" in mrsr-*) rm -f "$w" ;; *) ln "$w" "$ctx/wheelhouse/" 2>/dev/null || cp "$w" "$ctx/wheelhouse/" ;; esac
done
say "wheelhouse: $(find "$ctx/wheelhouse" -name '*.whl' | wc -l) wheels ($(du -sh "$ctx/wheelhouse" | cut -f1)) in $(ms_since "$start") ms"

# --- build -------------------------------------------------------------------------------------------------
start=$(date +%s%N)
"${engine[@]}" build --quiet -t "$IMAGE" --build-arg "BASE=$BASE" --build-arg "TORCH=$torch_req" \
    --build-arg "VERSION=$($PY -c 'import mrsr; print(mrsr.__version__)')" \
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f "$ctx/Dockerfile" "$ctx" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; die "the image did not build"; }
build_ms=$(ms_since "$start")
size=$("${engine[@]}" image inspect --format '{{.Size}}' "$IMAGE")
say "image $IMAGE from $BASE: built in $((build_ms / 1000)) s, $((size / 1000000)) MB"
"${engine[@]}" image inspect --format '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}' "$IMAGE" |
    grep '^org.opencontainers' | sed 's/^/  label /'
rm -rf "$ctx"

# --- inputs, made outside from the bundled real T1 sample --------------------------------------------------
data="$work/data"
mkdir -p "$data"
sample=$($PY -c "from mrsr.data import sample_path; print(sample_path())")
cp "$sample" "$data/t1.nii.gz"
$PY -m mrsr degrade "$data/t1.nii.gz" -o "$data/t1_lr.nii.gz" --scale 2 >/dev/null
$PY -m mrsr degrade "$data/t1.nii.gz" -o "$data/t1_lr_dicom" --scale 2 >/dev/null
$PY -m mrsr degrade "$data/t1.nii.gz" -o "$data/t1_thick.nii.gz" --axes 0 --scale 4 --slice-profile box >/dev/null
data_sum=$(cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)

if [ -n "${RUN_AS:-}" ]; then
    run_as=$RUN_AS
elif [ "$(id -u)" = 0 ]; then
    run_as=10001:10001  # root's files would belong to the caller trivially: run as an unprivileged user instead
else
    run_as="$(id -u):$(id -g)"
fi
inside="$work/inside"
outside="$work/outside"
mkdir -p "$inside" "$outside"
[ "$(id -u)" = 0 ] && chown "$run_as" "$inside"
bundle_root=$($PY -c "from mrsr.bundle import find_bundle; print(find_bundle('wasa'))")
say "inputs: real T1 sample $(basename "$sample"), x2 in-plane LR as NIfTI and DICOM, 4x thick slices; container user $run_as"

# --- the steps: the same command inside (`mrsr` or python) and outside --------------------------------------
in_ms=()
out_ms=()
names=()
step() {  # step NAME ENTRYPOINT ARGS... ; ARGS use /data and /out, mapped to the work folders outside
    local name=$1 entry=$2 start args_out=() a
    shift 2
    start=$(date +%s%N)
    if ! "${engine[@]}" run --rm --read-only --tmpfs /tmp --network none --user "$run_as" \
        -v "$data:/data:ro" -v "$inside:/out" -e MRSR_PROGRESS_EVERY=600 --entrypoint "$entry" "$IMAGE" \
        "$@" >"$work/$name.inside.log" 2>&1; then
        failed=$((failed + 1))
        say "FAIL  $name in the container (log: $work/$name.inside.log)"
        tail -n 5 "$work/$name.inside.log" | sed 's/^/      /'
        return 0
    fi
    in_ms+=("$(ms_since "$start")")
    for a in "$@"; do
        a=${a//\/opt\/mrsr\/bundles\/wasa_mr_sr/$bundle_root}
        a=${a//\/data/$data}
        args_out+=("${a//\/out/$outside}")
    done
    [ "$entry" = mrsr ] && args_out=(-m mrsr "${args_out[@]}")
    start=$(date +%s%N)
    if ! MRSR_PROGRESS_EVERY=600 $PY "${args_out[@]}" >"$work/$name.outside.log" 2>&1; then
        failed=$((failed + 1))
        say "FAIL  $name outside the container (log: $work/$name.outside.log)"
        return 0
    fi
    out_ms+=("$(ms_since "$start")")
    names+=("$name")
}

step demo mrsr demo -o /out/demo
step infer_nifti mrsr infer /data/t1_lr.nii.gz -o /out/t1_sr.nii.gz --bundle wasa --scale 2
step infer_dicom mrsr infer /data/t1_lr_dicom -o /out/t1_sr_dicom --bundle wasa --scale 2
step bundle_run python -m monai.bundle run --config_file /opt/mrsr/bundles/wasa_mr_sr/configs/inference.json \
    --bundle_root /opt/mrsr/bundles/wasa_mr_sr --input /data/t1_lr.nii.gz --output_dir /out/bundle_run
step selfsr mrsr selfsr /data/t1_thick.nii.gz -o /out/t1_iso.nii.gz --steps 20 --seed 0

say ""
say "step            inside (s)  outside (s)"
for i in "${!names[@]}"; do
    awk -v n="${names[$i]}" -v a="${in_ms[$i]}" -v b="${out_ms[$i]}" 'BEGIN { printf "%-15s %10.1f %12.1f\n", n, a / 1000, b / 1000 }'
done
say ""

# --- the comparisons ---------------------------------------------------------------------------------------
$PY - "$inside" "$outside" >"$work/compare.log" 2>&1 <<'PY' || true
import sys
from pathlib import Path

import numpy as np

from mrsr.data import load_volume

inside, outside = Path(sys.argv[1]), Path(sys.argv[2])
outputs = sorted(p.relative_to(outside) for p in outside.rglob("*.nii*"))
outputs += sorted({p.parent.relative_to(outside) for p in outside.rglob("*.dcm")})
extra = sorted({p.relative_to(inside) for p in inside.rglob("*") if p.is_file()} -
               {p.relative_to(outside) for p in outside.rglob("*") if p.is_file()})
if extra:
    print(f"FAIL  files written only inside: {', '.join(map(str, extra[:5]))}")
for rel in outputs:
    a, b = load_volume(inside / rel), load_volume(outside / rel)
    if a.shape != b.shape:
        print(f"FAIL  {rel}: shape {tuple(a.shape)} inside, {tuple(b.shape)} outside")
        continue
    dv = float(np.abs(a.numpy().astype(np.float64) - b.numpy()).max())
    da = float(np.abs(a.affine.numpy() - b.affine.numpy()).max())
    good = dv <= 1e-5 * max(1.0, float(np.abs(b.numpy()).max())) and da <= 1e-6
    print(f"{'ok  ' if good else 'FAIL'}  {str(rel):38s} {str(tuple(b.shape)):16s} max |voxel diff| {dv:.2e}, "
          f"max |affine diff| {da:.1e} mm")
if not outputs:
    print("FAIL  no outputs to compare")
PY
cat "$work/compare.log"
passed=$((passed + $(grep -c '^ok' "$work/compare.log" || true)))
failed=$((failed + $(grep -c -v '^ok' "$work/compare.log" || true)))

uid=${run_as%%:*}
if [ -z "$(find "$inside" -mindepth 1 ! -uid "$uid" -print -quit)" ]; then
    passed=$((passed + 1))
    say "ok    every file in the output mount belongs to uid $uid ($(find "$inside" -type f | wc -l) files)"
else
    failed=$((failed + 1))
    say "FAIL  files in the output mount not owned by uid $uid: $(find "$inside" -mindepth 1 ! -uid "$uid" | head -3)"
fi
if [ "$(cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)" = "$data_sum" ]; then
    passed=$((passed + 1))
    say "ok    the data mount is unchanged; the root file system was read-only and /tmp a tmpfs"
else
    failed=$((failed + 1))
    say "FAIL  the data mount changed"
fi

if [ "${GPU:-0}" = 1 ]; then
    gpu_flags=(--gpus all)
    [ "$(basename "$ENGINE")" = podman ] && gpu_flags=(--device nvidia.com/gpu=all)
    mkdir -p "$work/gpu" && [ "$(id -u)" = 0 ] && chown "$run_as" "$work/gpu"
    if "${engine[@]}" run --rm "${gpu_flags[@]}" --user "$run_as" -v "$work/gpu:/out" -e OUT=/out \
        --entrypoint bash "$IMAGE" /opt/mrsr/benchmarks/gpu_check.sh; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        say "FAIL  gpu_check.sh in the image"
    fi
fi

say "container check: $passed passed, $failed failed"
if [ "$failed" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    say "work folder kept: $work"
fi
[ "$failed" -eq 0 ]
