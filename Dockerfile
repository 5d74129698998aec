# mrsr on a GPU server: CUDA PyTorch base image, mrsr and its MONAI bundles, `mrsr` as the entry point.
#   docker build -t mrsr .
#   docker run --gpus all -v "$PWD:/data" mrsr infer /data/scan.nii.gz -o /data/scan_sr.nii.gz --bundle wasa --device cuda
#   docker run --gpus all -v "$PWD:/data" --entrypoint python mrsr -m monai.bundle run \
#       --config_file /opt/mrsr/bundles/wasa_mr_sr/configs/inference.json --bundle_root /opt/mrsr/bundles/wasa_mr_sr \
#       --input /data/scan.nii.gz --output_dir /data/sr
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MRSR_BUNDLES=/opt/mrsr/bundles
WORKDIR /opt/mrsr
COPY setup.cfg setup.py MANIFEST.in pyproject.toml README.md LICENSE NOTICE ./
COPY mrsr ./mrsr
# torch comes from the base image (CUDA build); pip keeps it because it satisfies torch>=2.1
RUN pip install . && mrsr --version
# the bundles (configs with their datalists, weights, model cards) and the datalist scripts of data_manifests/
COPY bundles ./bundles
COPY data_manifests ./data_manifests
RUN mrsr bundles
WORKDIR /data
ENTRYPOINT ["mrsr"]
CMD ["--help"]
