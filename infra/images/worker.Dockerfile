# K2's ingest worker image (k2/ingest-worker:<k2 version>): the `k2` command with all of K2's
# runtime dependencies (pyproject's, the transitive set pinned by requirements.lock). Runs the
# ingest workers and the bootstrap job; unprivileged.
ARG RUNTIME

FROM ${RUNTIME} AS wheels
USER root
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
# What the runtime's venv already holds (same pins) is skipped; the rest goes under a prefix
# laid out like the venv, so only the new files are copied.
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels --prefix /opt/k2/extra \
      --requirement /tmp/requirements.txt

FROM ${RUNTIME}
COPY --from=wheels /opt/k2/extra/ /opt/k2/venv/
USER root
# K2's code last: a source change rebuilds only this small layer. Installed editable from
# /opt/k2/src, so paths the code finds relative to itself (contracts/, infra/prometheus/,
# infra/grafana/, the launchers' Maven poms) resolve as in the repository.
COPY src/ /opt/k2/src/
RUN pip install --no-cache-dir --no-index --no-deps --no-build-isolation --editable /opt/k2/src \
 && python -m compileall -q /opt/k2/src/services /opt/k2/src/infra
USER k2
WORKDIR /home/k2
# Prometheus metrics (k2stack.observability.WORKER_METRICS_PORT).
EXPOSE 19400
STOPSIGNAL SIGTERM
CMD ["k2", "ingest", "run"]
