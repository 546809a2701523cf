# K2's Kafka image (k2/kafka:<topology version>): Kafka's jars from Maven Central (KRaft), on
# K2's JVM image.
# Every file comes from the host's download cache, where the local backend runs it from.
ARG JVM

FROM ${JVM}
USER root
# The launcher's artifact directories, at their paths in the host's download cache (with their
# `.complete` markers): `install` finds them and downloads nothing.
COPY cache/ /opt/k2/cache/
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
  CMD ["k2-stack", "probe", "kafka"]
CMD ["k2-stack", "serve", "kafka"]
