# mrsr in a container: the package, its five MONAI bundles and `mrsr` as the entry point.
#
# GPU server (the default base is PyTorch's CUDA image; its torch is kept):
#   docker build -t mrsr .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/data:ro" -v "$PWD/sr:/out" \
#       mrsr infer /data/scan.nii.gz -o /out/scan_sr.nii.gz --bundle wasa --device cuda
# CPU only, on any Debian/Ubuntu-like Python base (torch's CPU build is installed when the base has no torch):
#   docker build -t mrsr:cpu --build-arg BASE=python:3.11-slim .
# Offline: put wheels of every requirement into wheelhouse/ in the build context and pip installs from it
# alone (benchmarks/container_check.sh builds that way from a base made with mmdebstrap).
# The bundles are in /opt/mrsr/bundles, e.g. for MONAI's bundle runner:
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/data:ro" -v "$PWD/sr:/out" --entrypoint python mrsr \
#       -m monai.bundle run --config_file /opt/mrsr/bundles/wasa_mr_sr/configs/inference.json \
#       --bundle_root /opt/mrsr/bundles/wasa_mr_sr --input /data/scan.nii.gz --output_dir /out
# docs/DEPLOY.md has the whole story, and what was verified where.
ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE}

ARG BASE
# torch for a base that has none (pip then takes it from TORCH_INDEX_URL, or from wheelhouse/)
ARG TORCH=torch
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG VERSION=unknown
ARG REVISION=unknown

LABEL org.opencontainers.image.title="mrsr" \
      org.opencontainers.image.description="Medical image super-resolution on MONAI: NIfTI/DICOM in, super-resolved volume on the exact world grid out" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE}"

# The venv sees the base's packages (a CUDA image's torch) and keeps everything mrsr adds in one place.
# Caches and matplotlib's settings go to /tmp, so any --user can run the image on a read-only root file system.
ENV VIRTUAL_ENV=/opt/mrsr/venv \
    PATH=/opt/mrsr/venv/bin:${PATH} \
    MRSR_BUNDLES=/opt/mrsr/bundles \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/mrsr-matplotlib \
    XDG_CACHE_HOME=/tmp/mrsr-cache

# One layer: the venv, torch if missing, then mrsr from a copy of the source that is removed again (the
# package goes into the venv; the bundles are copied below, so the wheel does not carry a second set).
RUN --mount=type=bind,target=/tmp/context \
    set -eu; \
    if [ -d /tmp/context/wheelhouse ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/context/wheelhouse; fi; \
    python3 -m venv --system-site-packages "$VIRTUAL_ENV"; \
    python -c "import torch" 2>/dev/null || pip install --index-url "$TORCH_INDEX_URL" "$TORCH"; \
    mkdir -p /tmp/src; \
    cp -r /tmp/context/setup.cfg /tmp/context/setup.py /tmp/context/pyproject.toml /tmp/context/MANIFEST.in \
        /tmp/context/README.md /tmp/context/LICENSE /tmp/context/NOTICE /tmp/context/mrsr /tmp/src/; \
    pip install /tmp/src; \
    rm -rf /tmp/src; \
    mkdir -p /opt/mrsr/benchmarks; \
    cp -r /tmp/context/bundles /opt/mrsr/bundles; \
    cp /tmp/context/benchmarks/gpu_check.sh /opt/mrsr/benchmarks/; \
    useradd --system --uid 10001 --user-group --home-dir /opt/mrsr --no-create-home --shell /usr/sbin/nologin mrsr; \
    mrsr --version; \
    mrsr bundles

USER mrsr
WORKDIR /data
ENTRYPOINT ["mrsr"]
CMD ["--help"]
