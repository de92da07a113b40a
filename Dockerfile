# The quota sidecar only: Envoy and Redis run from their own images.
#   docker build -t extproc-quota .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 \
#     -v "$PWD/rules:/etc/extproc/rules:ro" extproc-quota      # = extproc serve
# Settings come from flags after the image name or from the environment
# (REDIS_URL, EXTPROC_RULES_DIR, EXTPROC_HOST, EXTPROC_PORT, ...).

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml ./
COPY extproc ./extproc
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXTPROC_HOST=0.0.0.0 \
    EXTPROC_RULES_DIR=/etc/extproc/rules \
    EXTPROC_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin extproc
# A numeric user, so Kubernetes' runAsNonRoot can verify it without a lookup.
USER 10001
# 50051 ext_proc (Envoy's filter), 50052 admin gRPC; both serve grpc.health.v1.
EXPOSE 50051 50052
ENTRYPOINT ["extproc"]
CMD ["serve"]
