# The pytest-tcpcopy agent image: the copier (`python3 -m pytest_tcpcopy replay`) and the NFQUEUE
# intercept (`python3 -m pytest_tcpcopy intercept`) with NetfilterQueue, iptables and iproute2.
#
# Built by pytest-tcpcopy itself from the installed package (pytest_tcpcopy.backends.docker.images): the
# build context holds this file, src/ (the package and a minimal pyproject) and wheels/ (the
# NetfilterQueue sdist and its build requirements, fetched on the host when it can). Only Debian's
# package mirror is reached from inside the build; PyPI only when wheels/ lacks something and
# PIP_NO_INDEX is 0.
#
# BASE_IMAGE: any Debian-based image with python3 >= 3.10 (python:3.11-slim from a registry, or
# the image `pytest-tcpcopy build-base-image` makes with debootstrap where there is no registry).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX=0
RUN set -e; \
    pkgs="gcc libc6-dev libnetfilter-queue-dev"; \
    python3 -c 'import ensurepip' 2>/dev/null || pkgs="$pkgs python3-venv"; \
    python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
        || pkgs="$pkgs python3-dev"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
    python3 -m venv /opt/tcpcopy
COPY wheels /wheels
COPY src /src
# Cython regenerates NetfilterQueue 1.1.0's C (which predates Python 3.11) and compiles the copier's
# hot path (src/setup.py, pytest_tcpcopy.speedups); it is installed here first with the other build
# requirements so that the build needs nothing but /wheels.
RUN set -e; \
    pip="/opt/tcpcopy/bin/pip install --no-cache-dir --disable-pip-version-check --find-links /wheels"; \
    $pip 'setuptools>=64' wheel 'Cython>=3'; \
    $pip --no-build-isolation /src; \
    /opt/tcpcopy/bin/pip uninstall --yes --disable-pip-version-check Cython wheel

FROM ${BASE_IMAGE}
RUN set -e; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnetfilter-queue1 iptables iproute2 libcap2-bin; \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/tcpcopy /opt/tcpcopy
# The agents run as uid 65534 with one capability each (pytest_tcpcopy/backends/docker/privileges.py): a
# capability a container is given reaches a non-root process only through file capabilities, so
# the copier runs a copy of Python that carries cap_net_raw, the intercept one that carries
# cap_net_admin, and iptables (nft) and ip carry cap_net_admin for the intercept's rules and route.
RUN set -e; \
    python=$(readlink -f /opt/tcpcopy/bin/python3); \
    cp "$python" /opt/tcpcopy/bin/python3-netraw; \
    cp "$python" /opt/tcpcopy/bin/python3-netadmin; \
    setcap cap_net_raw=ep /opt/tcpcopy/bin/python3-netraw; \
    setcap cap_net_admin=ep /opt/tcpcopy/bin/python3-netadmin; \
    setcap cap_net_admin=ep "$(readlink -f "$(command -v iptables)")"; \
    setcap cap_net_admin=ep "$(readlink -f "$(command -v ip)")"
ENV PATH=/opt/tcpcopy/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
LABEL pytest-tcpcopy=1
CMD ["python3", "-m", "pytest_tcpcopy", "--help"]
