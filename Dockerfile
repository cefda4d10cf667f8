# dlhw on a CUDA machine:
#   docker build -t dlhw .
#   docker run --gpus all -v "$PWD/runs:/runs" -v "$HOME/.cache/huggingface:/cache/huggingface" \
#       dlhw train caption-transformer --output-dir /runs/caption-transformer
# The same file builds on any Debian/Ubuntu base; Python is installed with apt where the base
# has none. `make docker-smoke` builds it on a local Debian image with the CPU extra, and
# `make docker-smoke-gpu` with the GPU extra but no TensorRT (NVIDIA's index is out of reach there):
#   docker build --build-arg BASE_IMAGE=dlhw-base:bookworm --build-arg EXTRAS=cpu -t dlhw:smoke .
# Dependencies: pyproject.toml + constraints.txt, installed by scripts/install.sh -- the same
# script `make install` runs. EXTRAS names one ONNX Runtime: gpu (onnxruntime-gpu with the CUDA
# and cuDNN wheels, CUDA 13 like torch's wheel; bitsandbytes) or cpu (onnxruntime), never both;
# tensorrt adds TensorRT 10 (tensorrt-cu13, whose libraries come from NVIDIA's index,
# pypi.nvidia.com, at install time); ray adds Ray Data for `--engine ray`.

ARG BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

# ---- build: a virtual environment with dlhw and one ONNX Runtime -----------------------------
FROM ${BASE_IMAGE} AS build
ARG EXTRAS=gpu,tensorrt,ray
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY scripts/ scripts/
COPY dlhw/ dlhw/
# Every dependency is a wheel or a pure-Python sdist, so no compiler is needed.
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && scripts/install.sh /opt/venv/bin/python "${EXTRAS}"

# ---- runtime: the environment on the same base, as a non-root user ---------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dlhw" \
      org.opencontainers.image.description="Train, evaluate, export and batch-run the model families of a deep-learning / NLP course" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/dlhw/dlhw"
ENV DEBIAN_FRONTEND=noninteractive
# The venv's python links to the base's python3 (installed above in the same way); ONNX Runtime
# needs OpenMP. Ubuntu 24.04 images ship a user `ubuntu` with uid 1000: it makes way for dlhw.
RUN if ! python3 -c "import ctypes; ctypes.CDLL('libgomp.so.1')" 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && if id -u ubuntu >/dev/null 2>&1; then userdel ubuntu && rm -rf /home/ubuntu; fi \
    && if getent group ubuntu >/dev/null; then groupdel ubuntu; fi \
    && groupadd --gid 1000 dlhw \
    && useradd --create-home --uid 1000 --gid 1000 --shell /usr/sbin/nologin dlhw \
    && mkdir -p /runs /cache/huggingface /cache/dlhw \
    && chown -R dlhw:dlhw /runs /cache
COPY --from=build /opt/venv /opt/venv
# CUDA, cuDNN and TensorRT come as wheels in the venv (site-packages/nvidia/*/lib, tensorrt_libs).
# ONNX Runtime dlopens its CUDA and TensorRT providers, which find those libraries by soname only:
# list their folders for the loader, first (000-) so they win over a base's own CUDA libraries and
# match what torch loads through its RPATH. Any Python version; no tensorrt_libs without TensorRT.
RUN find /opt/venv/lib -mindepth 3 -maxdepth 5 -type d \
        \( -path '*/site-packages/nvidia/*/lib' -o -path '*/site-packages/tensorrt_libs' \) \
        >/etc/ld.so.conf.d/000-dlhw-venv.conf \
    && sort -o /etc/ld.so.conf.d/000-dlhw-venv.conf /etc/ld.so.conf.d/000-dlhw-venv.conf \
    && ldconfig \
    && sed 's/^/loader path: /' /etc/ld.so.conf.d/000-dlhw-venv.conf
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/cache/huggingface \
    DLHW_CACHE_DIR=/cache/dlhw \
    PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /runs
VOLUME ["/runs", "/cache/huggingface"]
ENTRYPOINT ["dlhw"]
CMD ["--help"]
