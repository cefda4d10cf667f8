# dlhw on a CUDA machine:
#   docker build -t dlhw .
#   docker run --gpus all -v "$PWD/runs:/runs" -v "$HOME/.cache/huggingface:/cache/huggingface" \
#       dlhw train caption-transformer --output-dir /runs/caption-transformer
# Dependencies: pyproject.toml + constraints.txt, installed by scripts/install.sh -- the same
# script `make install` runs.

ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

# ---- build: a virtual environment with dlhw and its GPU extras --------------------------------
FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY scripts/ scripts/
COPY dlhw/ dlhw/
RUN scripts/install.sh /opt/venv/bin/python gpu

# ---- runtime: the environment on a slim CUDA runtime, as a non-root user --------------------
FROM ${CUDA_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dlhw" \
      org.opencontainers.image.description="Train, evaluate, export and batch-run the model families of a deep-learning / NLP course" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/dlhw/dlhw"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin dlhw \
    && mkdir -p /runs /cache/huggingface /cache/dlhw \
    && chown -R dlhw:dlhw /runs /cache
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/cache/huggingface \
    DLHW_CACHE_DIR=/cache/dlhw \
    PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /runs
VOLUME ["/runs", "/cache/huggingface"]
ENTRYPOINT ["dlhw"]
CMD ["--help"]
