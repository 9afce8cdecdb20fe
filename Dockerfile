# The worker image the Helm chart runs (values: image.repository, image.tag).
#
#   docker build -t rueckkanal:0.1.0 .
#
# The code runs from /app: the XSD, the code lists and the default Fachverfahren mappings are read relative to the
# source tree (schemas/, config/), so the project is installed in editable mode rather than copied into
# site-packages. Dependencies come from requirements.lock (versions and hashes; `make lock` updates it). Non-root
# (uid 10001, as in the chart's securityContext); the root file system can be read-only, faust's local table store
# goes to /tmp (an emptyDir in the chart).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RK_DATA_DIR=/tmp/rueckkanal

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY rueckkanal ./rueckkanal
COPY adapters ./adapters
COPY streams ./streams
COPY schemas ./schemas
COPY config ./config
RUN pip install --require-hashes --no-deps -r requirements.lock \
    && pip install --no-deps --no-build-isolation -e . \
    && pip check \
    && python -m compileall -q rueckkanal adapters streams \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rueckkanal

USER 10001
EXPOSE 6066
ENTRYPOINT ["rueckkanal"]
CMD ["worker"]
