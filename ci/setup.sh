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

# The real Python clients (suites with [client] kind = "sqlalchemy" / "flask-sqlalchemy"):
# a venv with pinned versions from PyPI at the path goneaway looks in (GONEAWAY_PYTHON
# overrides). mysqlclient builds against libmariadb with pkg-config.
venv=/opt/goneaway-venv
pins=(SQLAlchemy==2.1.9 Flask-SQLAlchemy==3.1.1 Flask==3.1.3 PyMySQL==1.2.4 mysqlclient==2.3.2)
pyneed=()
dpkg -s libmariadb-dev >/dev/null 2>&1 || dpkg -s default-libmysqlclient-dev >/dev/null 2>&1 || pyneed+=(libmariadb-dev)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || pyneed+=(python3-venv)
command -v python3 >/dev/null 2>&1 || pyneed+=(python3)
if [ ${#pyneed[@]} -gt 0 ]; then
  echo "ci/setup.sh: installing ${pyneed[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pyneed[@]}" build-essential >/dev/null
fi
want="$(printf '%s\n' "${pins[@]}" | sort -f)"
have="$("$venv/bin/python" -m pip freeze 2>/dev/null | grep -iE '^(sqlalchemy|flask-sqlalchemy|flask|pymysql|mysqlclient)==' | sort -f || true)"
if [ "$(echo "$want" | tr 'A-Z_' 'a-z-')" != "$(echo "$have" | tr 'A-Z_' 'a-z-')" ]; then
  echo "ci/setup.sh: making $venv with ${pins[*]}"
  [ -x "$venv/bin/python" ] || $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}"
fi
echo "ci/setup.sh: $("$venv/bin/python" --version) at $venv with ${pins[*]}"

# The Go, Node and Java clients (suites with [client] kind = "go-database-sql", …): only
# Debian's packages, since no other registry is reachable. goneaway compiles the Go and
# Java adapters on first use and caches them by source hash.
langneed=()
for pkg in golang-go golang-github-go-sql-driver-mysql-dev node-mysql libhikaricp-java libmariadb-java libslf4j-java; do
  dpkg -s "$pkg" >/dev/null 2>&1 || langneed+=("$pkg")
done
command -v node >/dev/null 2>&1 || langneed+=(nodejs)
command -v javac >/dev/null 2>&1 || langneed+=(default-jdk-headless)
if [ ${#langneed[@]} -gt 0 ]; then
  echo "ci/setup.sh: installing ${langneed[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${langneed[@]}" >/dev/null
fi
echo "ci/setup.sh: $(go version), go-sql-driver/mysql $(dpkg-query -W -f '${Version}' golang-github-go-sql-driver-mysql-dev)"
echo "ci/setup.sh: node $(node --version), node-mysql $(dpkg-query -W -f '${Version}' node-mysql)"
echo "ci/setup.sh: $(javac -J-XX:-UsePerfData -version 2>&1), HikariCP $(dpkg-query -W -f '${Version}' libhikaricp-java), MariaDB Connector/J $(dpkg-query -W -f '${Version}' libmariadb-java)"

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
