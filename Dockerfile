# K2's image: the `k2` command (ingest workers, bootstrap job). Built by the Pulumi program
# (infra/k2stack/pulumi/workers.py); runs as an unprivileged user.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY services ./services
COPY infra/k2stack ./infra/k2stack
# The lock pins the whole transitive set; only the runtime dependencies are installed.
RUN python -m venv /opt/k2 \
 && /opt/k2/bin/pip install --no-cache-dir --constraint requirements.lock .

FROM python:3.11.14-slim-bookworm
RUN useradd --uid 10001 --create-home k2
COPY --from=build /opt/k2 /opt/k2
COPY contracts /app/contracts
ENV PATH=/opt/k2/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
USER k2
# Prometheus metrics (k2stack.observability.WORKER_METRICS_PORT).
EXPOSE 19400
CMD ["k2", "ingest", "run"]
