# One image for web (daphne), worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

RUN pip install --no-cache-dir --root-user-action=ignore uv

WORKDIR /app

# The locked dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN uv sync --frozen --no-dev

ENV VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    ARTIFACTS_DIR=/data/artifacts

# Static files are part of the image (served by whitenoise); the key is only for this step.
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --system --uid 1000 --create-home app \
    && mkdir -p /app/var /data/artifacts \
    && chown -R app:app /app/var /data/artifacts

USER app
EXPOSE 8000
CMD ["python", "-m", "config.daphne_server", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
