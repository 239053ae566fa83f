# pimbot: one image for the bot, its HTTP server and worker replicas.
#   docker build -t pimbot .
#   docker run -p 3000:3000 --env-file .env -v $PWD/pimbot.yaml:/app/pimbot.yaml:ro pimbot
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY adapters ./adapters
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app pimbot && mkdir -p /app && chown pimbot /app
WORKDIR /app
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/pimbot-*.whl)[all]" && rm /tmp/*.whl
USER pimbot
ENV PIMBOT_HOST=0.0.0.0 PIMBOT_PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PIMBOT_PORT\",\"3000\")}/healthz')"
# With Slack or Teams credentials in the environment this serves HTTP; PIMBOT_ADAPTERS=none
# runs a worker replica (HTTP health endpoints plus the scheduler).
CMD ["pimbot", "run"]
