# The news bot: CPU-only PyTorch, the embedding model (and its int8 ONNX export) baked in,
# data on a volume.
#   docker build -t newsbot .
#   docker run -d --name newsbot -e BOT_TOKEN=123456:ABC-DEF -e ADMIN_IDS=111 -v newsbot-data:/data newsbot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DATA_DIR=/data \
    MODEL_CACHE_DIR=/app/models \
    SAMPLES_DIR=/app/samples

WORKDIR /app

# 1. CPU-only PyTorch first: the largest layer, and the CUDA build is not wanted.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# 2. The other dependencies (the model package included), from pyproject.toml alone,
#    so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# 3. The code, then the project itself (no dependency resolution left to do).
COPY README.md ./
COPY index ./index
COPY bot ./bot
COPY samples ./samples
# The int8 ONNX model the bot embeds with (EMBEDDING_BACKEND=onnx-int8) is exported from the
# bundled weights here, once, into MODEL_CACHE_DIR.
RUN pip install --no-deps . \
    && python -c "from index import IndexSettings, create_embedder; create_embedder(IndexSettings()).encode(['warm-up'])" \
    && test -n "$(ls /app/models)"

RUN useradd --create-home --uid 10001 newsbot \
    && mkdir -p /data && chown newsbot:newsbot /data
USER newsbot
VOLUME /data

# Webhook mode listens here (set WEBHOOK_URL and WEBHOOK_SECRET), with /healthz, /readyz and
# /metrics beside it; polling needs no port (METRICS_PORT serves those three).
EXPOSE 8080

# Healthy while the bot is alive: `healthcheck` asks its /healthz on WEBHOOK_PORT (webhook
# mode, `web`) or METRICS_PORT (polling with it set, `worker`); with neither, it checks that
# /data/heartbeat is fresh (rewritten every 30 s). compose.yaml asks /readyz (--ready).
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot", "healthcheck"]

CMD ["python", "-m", "bot"]
