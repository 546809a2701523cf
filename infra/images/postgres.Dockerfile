# K2's PostgreSQL image (k2/postgres:<topology version>): Debian's postgresql-15, started by K2's
# own launcher (`k2-stack serve postgres`: initdb under the state dir, then postgres) as
# Debian's `postgres` user, which initdb and postgres require.
ARG RUNTIME

FROM ${RUNTIME}
USER root
# postgresql-common would create (and try to start) a "main" cluster on install: the launcher
# makes its own under /var/lib/k2/stack.
RUN install -d /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/k2.conf \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql-15 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && chown postgres:postgres /var/lib/k2/stack
# K2's code last: a source change rebuilds only this small layer. Installed editable from
# /opt/k2/src, so paths the code finds relative to itself (contracts/, infra/prometheus/,
# infra/grafana/, the launchers' Maven poms) resolve as in the repository.
COPY src/ /opt/k2/src/
RUN pip install --no-cache-dir --no-index --no-deps --no-build-isolation --editable /opt/k2/src \
 && python -m compileall -q /opt/k2/src/services /opt/k2/src/infra
USER postgres
STOPSIGNAL SIGTERM
# The launcher's own health probe (the same one the local backend runs).
HEALTHCHECK --interval=5s --timeout=10s --start-period=10s --retries=24 \
  CMD ["k2-stack", "probe", "postgres"]
CMD ["k2-stack", "serve", "postgres"]
