#!/usr/bin/env bash
# Installs what goneaway's tests and suites need on a Debian/Ubuntu machine, then builds
# the local MariaDB image when a Docker engine is reachable. Idempotent and quick when
# everything is already there. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
# toxiproxy_rust uses native-tls: openssl headers and pkg-config to build.
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci/setup.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  # The package's own service is not wanted: goneaway starts its own servers.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "ci/setup.sh: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"

if [ -f ci/build-image.sh ]; then
  if docker info >/dev/null 2>&1; then
    bash ci/build-image.sh
  elif [ -n "${CI:-}" ]; then
    echo "ci/setup.sh: CI is set but no Docker engine answers; the docker tests need one" >&2
    exit 1
  else
    echo "ci/setup.sh: no Docker engine; skipping the local image (docker tests will skip)"
  fi
fi
