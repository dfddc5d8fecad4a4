# The ringwatch API, for docker-compose.yml (which points it at the neo4j service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RINGWATCH_DATA_DIR=/var/lib/ringwatch

# CPU-only torch from PyTorch's own index first: the default PyPI wheel drags in gigabytes of CUDA.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY embeddings ./embeddings
COPY api ./api
RUN pip install ".[faces]"

# Unprivileged user; the data directory (face index, models, keys) is a volume it owns.
RUN useradd --system --uid 10001 --home-dir /var/lib/ringwatch ringwatch \
    && mkdir -p /var/lib/ringwatch \
    && chown ringwatch /var/lib/ringwatch
USER ringwatch
VOLUME /var/lib/ringwatch
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["ringwatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
