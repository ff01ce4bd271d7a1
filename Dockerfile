# attest service image: server extra only (no embedded PostgreSQL, no dev tools), non-root.
# Needs ATTEST_DATABASE_URL, ATTEST_ISSUER, ATTEST_KEYSTORE_PASSPHRASE and
# ATTEST_PAIRWISE_SECRET; mount the keystore (shared by every instance) at /var/lib/attest/keys.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY attest ./attest
COPY schema ./schema
RUN python -m venv /opt/attest \
 && /opt/attest/bin/pip install --upgrade pip \
 && /opt/attest/bin/pip install '.[server]'

FROM python:3.11-slim
RUN groupadd --system attest && useradd --system --gid attest --home-dir /var/lib/attest attest \
 && mkdir -p /var/lib/attest/keys && chown -R attest:attest /var/lib/attest
COPY --from=build /opt/attest /opt/attest
ENV PATH=/opt/attest/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ATTEST_HOST=0.0.0.0 \
    ATTEST_PORT=8080 \
    ATTEST_DATA_DIR=/var/lib/attest \
    ATTEST_KEYSTORE=/var/lib/attest/keys
USER attest
WORKDIR /var/lib/attest
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["attest"]
CMD ["serve"]
