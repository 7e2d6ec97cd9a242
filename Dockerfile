# The gateway with its four built-in plugins and the PostgreSQL driver, run as a non-root user.
# Build: docker build -t billing-gateway .   Run with PostgreSQL: docker compose up (compose.yaml).
# No secret is baked in: the database URL, seller identity and tokens come from the environment.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# The trusted documents: the wheel carries them as gateway/operations (pyproject.toml).
COPY schema/operations ./schema/operations
COPY plugins ./plugins
# Wheels of the gateway, the built-in plugins and every dependency, so the final image needs no
# compiler and no network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels \
        . plugins/payment_balance plugins/payment_card plugins/tax_vat plugins/messaging_rates \
        "psycopg[binary]>=3.2"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BILLING_GATEWAY_LOG_FORMAT=json
RUN useradd --system --no-log-init --uid 10001 --user-group --create-home --home-dir /app gateway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /app
EXPOSE 8000
# Ready when the database answers and its schema is current (GET /readyz); slim has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
# serve brings the database schema up to date before it listens (billing-gateway migrate does only that).
CMD ["billing-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
