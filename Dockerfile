# pimbot: one image for the bot, its HTTP server and worker replicas.
#   docker build -t pimbot .
#   docker run -p 3000:3000 --env-file .env -v pimbot-data:/data \
#     -v "$PWD/pimbot.yaml:/etc/pimbot/pimbot.yaml:ro" pimbot
# deploy/docker-compose.yml runs PostgreSQL and two replicas (docs/OPERATIONS.md).

# PYTHON_IMAGE: any Debian bookworm image with python3.11 and its venv module; a registry
# mirror's copy of the official one where Docker Hub is out of reach (docs/OPERATIONS.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first (pinned to exact versions), so a code change reuses this layer.
COPY deploy/requirements.txt ./requirements.txt
RUN python -m venv /opt/pimbot \
 && /opt/pimbot/bin/pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY adapters ./adapters
RUN /opt/pimbot/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/pimbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    PIMBOT_HOST=0.0.0.0 \
    PIMBOT_PORT=3000 \
    PIMBOT_DATABASE_URL=sqlite+aiosqlite:////data/pimbot.db \
    PIMBOT_POLICY=/etc/pimbot/pimbot.yaml \
    PIMBOT_AUDIT_CHECKPOINT=/data/audit-checkpoints.jsonl
COPY --from=build /opt/pimbot /opt/pimbot
COPY src/pimbot/policy/example.yaml /etc/pimbot/pimbot.yaml
# A numeric, unprivileged user: no name to resolve, nothing in the image it can write but /data.
RUN mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PIMBOT_PORT', '3000'), timeout=4)"]
# With Slack or Teams credentials this serves their HTTP routes; PIMBOT_ADAPTERS=none runs a
# worker replica (health routes and the scheduler). SIGTERM stops it gracefully.
CMD ["pimbot", "run"]
