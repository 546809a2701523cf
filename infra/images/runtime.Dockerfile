# K2's runtime image (k2/runtime:<k2 version>): Debian's Python 3.11 and a venv at /opt/k2/venv
# holding exactly the libraries K2's stack tooling imports (`k2-stack serve|probe` and the
# launchers), at the versions pinned in requirements.lock. Every service image and the ingest
# worker build FROM it (ARG RUNTIME); each adds its own service and, as its top layer, K2's code.
#
# Built by `k2stack.docker.images` from a staged context: wheels/ (a wheelhouse downloaded on
# the host from PyPI: builds need no PyPI access) and requirements.txt (the pins).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS venv
# Word for word the first instruction of the final stage, so the layer is built once and shared.
# Packages installed from here on (in every image) leave out docs, man pages and translations
# (as debian:bookworm-slim does); `apt-get clean` drops the downloaded .debs and apt's caches.
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/share/locale/*' > /etc/dpkg/dpkg.cfg.d/k2-slim \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-venv \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY wheels/ /tmp/wheels/
COPY requirements.txt /tmp/requirements.txt
# setuptools (pinned in requirements.txt) stays in the venv: service images install K2's own
# source with it, offline (`pip install --no-build-isolation --editable`).
RUN python3 -m venv /opt/k2/venv \
 && /opt/k2/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
      --requirement /tmp/requirements.txt

# The wheels stay behind in the stage above; only the installed venv is copied.
FROM ${BASE}
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/share/locale/*' > /etc/dpkg/dpkg.cfg.d/k2-slim \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-venv \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# Services run unprivileged (PostgreSQL's image switches to Debian's `postgres` user). A named
# volume mounted on the state dir takes its owner from the image on first use.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin k2 \
 && install -d -o k2 -g k2 -m 0750 /var/lib/k2/stack \
 && install -d -m 0755 /opt/k2/cache
COPY --from=venv /opt/k2/venv /opt/k2/venv
# PATH written out: an imported (debootstrap) base image defines none to append to.
ENV PATH=/opt/k2/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    K2_CACHE_DIR=/opt/k2/cache \
    K2_STACK_DIR=/var/lib/k2/stack \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
USER k2
