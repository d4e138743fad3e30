# DailyQ images. docker-compose.yml builds both targets.
#
#   app           the runtime (requirements.txt only): gunicorn by default; the
#                 same image runs migrate, the Celery worker and Celery beat.
#   ses-emulator  app plus moto's server: a local stand-in for Amazon SES.
#
#   docker build --target app -t dailyq .
#   docker build --target ses-emulator -t dailyq-ses .

FROM python:3.11-slim AS app

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

# An unprivileged user with a home (gunicorn puts its control socket in ~/.gunicorn).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code stays owned by root, read-only to the app user; only VAR_DIR is writable.
COPY . .

# Static files are collected with the production storage (hashed names and a
# manifest, CompressedManifestStaticFilesStorage), because that is what the
# containers run with: files collected in development mode have no manifest,
# and every page would fail with "Missing staticfiles manifest entry".
# Production mode needs its required settings to import; these placeholders
# exist only for this command and nothing connects to them.
RUN DJANGO_ENV=production \
    SECRET_KEY=collectstatic-build-placeholder \
    ALLOWED_HOSTS=localhost \
    SITE_URL=http://localhost \
    DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    AWS_SES_REGION_NAME=us-east-1 \
    python manage.py collectstatic --noinput \
    && mkdir -p "$VAR_DIR" \
    && chown app:app "$VAR_DIR"

USER app
EXPOSE 8000

# Worker processes: WEB_CONCURRENCY (gunicorn reads it; default 1).
CMD ["gunicorn", "mailservice.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]


FROM app AS ses-emulator

USER root
# Only moto's line of requirements-dev.txt, at the pin written there (not the
# test and lint tools); requirements.txt is named again so the resolver keeps
# the runtime's pins (boto3, botocore...) as they are.
RUN grep -E '^moto\[server\]==' requirements-dev.txt > /tmp/ses-emulator-requirements.txt \
    && test "$(wc -l < /tmp/ses-emulator-requirements.txt)" -eq 1 \
    && pip install -r requirements.txt -r /tmp/ses-emulator-requirements.txt \
    && rm /tmp/ses-emulator-requirements.txt
USER app

EXPOSE 4579
CMD ["python", "manage.py", "ses_emulator", "--host", "0.0.0.0"]
