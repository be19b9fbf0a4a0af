# One image for the web process and the worker: `soko serve`, `soko worker`, `soko migrate`.
# Build: docker build -t soko .      Run: docker run --env-file .env soko serve

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY kernel ./kernel
COPY plugins ./plugins
RUN python -m venv /opt/soko \
 && /opt/soko/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /srv/soko soko
COPY --from=build /opt/soko /opt/soko
WORKDIR /srv/soko
COPY --chown=root:root settings.toml ./
COPY --chown=root:root config ./config
ENV PATH=/opt/soko/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SOKO_ENV=production \
    SOKO_ROOT=/srv/soko \
    SOKO_BIND=0.0.0.0:8000
USER soko
# 9100: /metrics (metrics.bind, production default), one listener for all of the container's processes.
EXPOSE 8000 9100
# Liveness of the web role; a worker container overrides or disables it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["soko"]
CMD ["serve"]
