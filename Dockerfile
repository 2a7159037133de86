# The platform's image: every service of docker-compose.yml runs `flattr <command>` from it.
# Build stage: a virtual environment with the package and its dependencies (all published as
# wheels for Python 3.11, so no compiler is needed).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/flattr
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY gateway gateway
COPY bots bots
COPY worker worker
COPY flattr_cli flattr_cli
RUN /opt/flattr/bin/pip install .

# Final stage: the environment alone, run by a user without privileges; no pip cache, no
# sources, no build or test tools.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin flattr
COPY --from=build /opt/flattr /opt/flattr
ENV PATH=/opt/flattr/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER flattr
WORKDIR /home/flattr
EXPOSE 8080
ENTRYPOINT ["flattr"]
CMD ["serve", "--host", "0.0.0.0"]
