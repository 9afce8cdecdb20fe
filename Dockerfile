# The worker image for those who build with Docker (values: image.repository, image.tag). Without Docker,
# `make image` builds the same content with buildah from Debian packages, smoke-tests it and writes an SBOM
# (scripts/image.sh, docs/operations.md "The image").
#
#   docker build -t rueckkanal:0.1.0 .
#
# The first stage builds the wheel with the setuptools pinned in requirements.lock; the second installs the lock's
# runtime pins (versions and hashes) and that wheel into /opt/rueckkanal, and nothing of the source tree: the XSD,
# the code lists, the default Fachverfahren mappings, status-web's migrations and static files are package data.
# Non-root (uid 10001, as in the chart's securityContext); the root file system can be read-only, faust's local
# table store goes to /tmp (an emptyDir in the chart).
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY rueckkanal ./rueckkanal
COPY adapters ./adapters
COPY streams ./streams
COPY scripts/image_tools.py ./
RUN pip wheel --no-deps --no-build-isolation -w /wheels . \
    && python image_tools.py runtime-lock requirements.lock >/wheels/runtime.lock

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/rueckkanal/bin:$PATH \
    RK_DATA_DIR=/tmp/rueckkanal
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    python -m venv /opt/rueckkanal \
    && /opt/rueckkanal/bin/pip install --require-hashes --no-deps -r /wheels/runtime.lock \
    && /opt/rueckkanal/bin/pip install --no-deps /wheels/rueckkanal-*.whl \
    && /opt/rueckkanal/bin/pip check \
    && /opt/rueckkanal/bin/pip uninstall --yes pip setuptools \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rueckkanal

USER 10001
WORKDIR /tmp
EXPOSE 6066
ENTRYPOINT ["rueckkanal"]
CMD ["worker"]
