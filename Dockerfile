# mrsr on a GPU server: CUDA PyTorch base image, mrsr installed, `mrsr` as the entry point.
#   docker build -t mrsr .
#   docker run --gpus all -v "$PWD:/data" mrsr infer /data/lr.nii.gz -o /data/sr.nii.gz --network bicubic --device cuda
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/mrsr
COPY setup.cfg pyproject.toml README.md LICENSE NOTICE ./
COPY mrsr ./mrsr
COPY bundles ./bundles
# torch comes from the base image (CUDA build); pip keeps it because it satisfies torch>=2.1
RUN pip install . && mrsr --version
WORKDIR /data
ENTRYPOINT ["mrsr"]
CMD ["--help"]
