#!/usr/bin/env bash
# Build a MONAI Application Package (MAP) of the mrsr app (deploy/README.md, "Packaging"): stage its app folder
# (deploy/app.py, __main__.py, requirements.txt and the mrsr package) and its models folder (one bundle), then run
# `monai-deploy package`. Needs Docker with buildx and access to NVIDIA's base images.
#
#   bash deploy/package.sh [BUNDLE [TAG [MORE monai-deploy package OPTIONS...]]]
#   bash deploy/package.sh wasa mrsr-sr:0.1 -l DEBUG
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=${1:-wasa}
tag=${2:-mrsr-sr:0.1}
shift $(( $# < 2 ? $# : 2 ))
source_bundle="$root/bundles/${bundle%_mr_sr}_mr_sr"
[[ -f "$source_bundle/configs/inference.json" ]] || { echo "package.sh: no bundle $source_bundle" >&2; exit 2; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/app" "$stage/models"
cp "$root/deploy/app.py" "$root/deploy/__main__.py" "$root/deploy/requirements.txt" "$stage/app/"
cp -r "$root/mrsr" "$stage/app/mrsr"  # `python3 /opt/holoscan/app` imports it from the app folder
cp -r "$source_bundle" "$stage/models/"  # HOLOSCAN_MODEL_PATH=/opt/holoscan/models holds this one bundle
rm -rf "$stage/app/mrsr/bundles" "$stage/models/"*/eval "$stage/models/"*/runs
find "$stage" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "package.sh: app $(du -sh "$stage/app" | cut -f1), models $(du -sh "$stage/models" | cut -f1) staged in $stage"
monai-deploy package "$stage/app" -c "$root/deploy/app.yaml" -t "$tag" --platform x86_64 -m "$stage/models" "$@"
