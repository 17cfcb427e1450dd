# One image for the API, the worker and the simulators (the command picks the role).
# Every top-level package is copied, one COPY each (tests/deploy/test_dockerfile.py checks).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY callflow callflow
COPY contracts contracts
COPY channels channels
COPY store store
COPY storage storage
COPY activities activities
COPY workflows workflows
COPY api api
COPY intake intake
COPY simulators simulators
COPY scripts scripts
COPY worker.py alembic.ini ./
RUN pip install --no-cache-dir .
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--timeout-keep-alive", "75"]
