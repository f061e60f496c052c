#!/usr/bin/env bash
# Build the MariaDB image the docker backend runs, with no registry.
#
#   bash ci/build-image.sh            # build (or say it is up to date) and print size + time
#   GONEAWAY_IMAGE_FORCE=1 bash ci/build-image.sh   # rebuild even if up to date
#
# Tags: goneaway/mariadb:<version> (e.g. 10.11.19) and goneaway/mariadb:local, the tag
# the code defaults to (`goneaway::server::docker::DEFAULT_IMAGE`).
#
# How: the image is a minimal root filesystem assembled from the host's Debian
# mariadb-server package (installed with apt if missing): /usr/sbin/mariadbd and the
# libraries `ldd` lists, /usr/share/mysql/{english,charsets}, /bin/sh (dash), a one-line
# passwd/group and a datadir initialized here with mariadb-install-db (small redo log so
# the datadir stays small: fuse-overlayfs copies a file up whole on first write). The tree
# is turned into an image with `docker import`; nothing is pulled.
#
# Contract of the image (kept close to the official mariadb image, so the Rust code has
# one path for both):
#   - entrypoint /goneaway-entrypoint.sh runs `mariadbd` bound to 0.0.0.0:3306, logging to
#     stderr (docker logs), with --skip-name-resolve; every container argument is appended
#     to mariadbd's command line, so settings are passed as `--wait_timeout=2`.
#   - users, from the environment, applied with --init-file at EVERY start (idempotent):
#       MARIADB_ROOT_PASSWORD      root@'%' password (required, or
#       MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)
#       MARIADB_DATABASE           database to create
#       MARIADB_USER / MARIADB_PASSWORD  a user with all privileges on MARIADB_DATABASE
#     The MYSQL_* spellings are accepted too. Values must not contain ' or \.
#   - the server prints "mariadbd: ready for connections." once per start (no temporary
#     bootstrap server as in the official image).
#
# Idempotent and fast when up to date: the image carries the label goneaway.content, a
# hash of this script and the mariadbd binary; if both tags exist with that label the
# script prints so and exits.
set -euo pipefail

REPO=goneaway/mariadb
DEFAULT_TAG=local
started=$(date +%s.%N)

die() { echo "build-image: $*" >&2; exit 1; }
elapsed() { awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }

command -v docker >/dev/null || die "docker is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the docker daemon; start it (e.g. service docker start)"

if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb-install-db >/dev/null; then
  echo "build-image: installing mariadb-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
  # The package starts a server on Debian; the image needs only its files.
  (service mariadb stop || service mysql stop || true) >/dev/null 2>&1
fi

version=$(/usr/sbin/mariadbd --version | sed -n 's/.*Ver \([0-9][0-9.]*\).*/\1/p')
[ -n "$version" ] || die "cannot read the mariadbd version"
# What the image is made of: this script, the server and the libraries it loads.
libs=$(ldd /usr/sbin/mariadbd /bin/dash | awk '/=> \//{ print $3 }' | sort -u)
# shellcheck disable=SC2086
content=$(cat "$0" /usr/sbin/mariadbd $libs | sha256sum | cut -c1-16)

label_of() {
  docker image inspect -f '{{ index .Config.Labels "goneaway.content" }}' "$1" 2>/dev/null || true
}
if [ -z "${GONEAWAY_IMAGE_FORCE:-}" ] \
  && [ "$(label_of "$REPO:$version")" = "$content" ] \
  && [ "$(label_of "$REPO:$DEFAULT_TAG")" = "$content" ]; then
  size=$(docker image inspect -f '{{ .Size }}' "$REPO:$DEFAULT_TAG")
  echo "build-image: $REPO:$version ($REPO:$DEFAULT_TAG) is up to date;" \
    "size $((size / 1000000)) MB; checked in $(elapsed) s"
  exit 0
fi

work=$(mktemp -d /tmp/goneaway-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,run/mysqld,var/lib/mysql,usr/sbin,usr/share/mysql}
chmod 1777 "$root/tmp"

# Binaries and every library they load (with the dynamic loader), at their own paths.
copy_with_libs() {
  local bin=$1
  install -D -m 0755 "$bin" "$root$bin"
  ldd "$bin" | awk '/=> \//{ print $3 } /^\s*\/lib/{ print $1 }' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}
copy_with_libs /usr/sbin/mariadbd
copy_with_libs /bin/dash
ln -s dash "$root/bin/sh"
cp -a /usr/share/mysql/english /usr/share/mysql/charsets "$root/usr/share/mysql/"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
echo 'hosts: files' >"$root/etc/nsswitch.conf"

# Options the image always runs with; the datadir is initialized with the same ones.
common=(--no-defaults --user=root --datadir=/var/lib/mysql
  --lc-messages-dir=/usr/share/mysql --character-sets-dir=/usr/share/mysql/charsets
  --innodb-log-file-size=8M --innodb-data-file-path=ibdata1:12M:autoextend
  --innodb-buffer-pool-size=32M --skip-log-bin)

# mariadb-install-db runs the host's mariadbd in bootstrap mode (no networking);
# --cross-bootstrap leaves out the users named after this build host; a private tmpdir
# keeps its temporary tables away from whatever else uses /tmp.
mkdir -p "$work/tmp"
mariadb-install-db --no-defaults --user=root --datadir="$root/var/lib/mysql" \
  --auth-root-authentication-method=normal --skip-test-db --cross-bootstrap --tmpdir="$work/tmp" \
  --innodb-log-file-size=8M --innodb-data-file-path=ibdata1:12M:autoextend --innodb-autoextend-increment=4 \
  >"$work/install-db.log" 2>&1 || { cat "$work/install-db.log" >&2; die "mariadb-install-db failed"; }
# Aria tables remember the path they were created at and are "zerofilled" on the first
# start elsewhere; doing it here saves that work on every container's first start.
aria_chk --zerofill --silent "$root"/var/lib/mysql/mysql/*.MAI >/dev/null 2>&1 || true
rm -f "$root"/var/lib/mysql/{aria_log_control,aria_log.*,*.pid,ib_buffer_pool}

cat >"$root/goneaway-entrypoint.sh" <<'EOF'
#!/bin/sh
# goneaway/mariadb entrypoint: users from the environment, then mariadbd "$@".
set -e
root_pw="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
allow_empty="${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
db="${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}"
user="${MARIADB_USER:-${MYSQL_USER:-}}"
pw="${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}"
for v in "$root_pw" "$db" "$user" "$pw"; do
  case "$v" in *[\'\\]*)
    echo "goneaway-entrypoint: user names, passwords and database must not contain ' or \\" >&2
    exit 1;;
  esac
done
if [ -z "$root_pw" ] && [ -z "$allow_empty" ]; then
  echo "goneaway-entrypoint: set MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)" >&2
  exit 1
fi
init=/run/mysqld/init.sql
{
  echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$root_pw';"
  echo "ALTER USER 'root'@'%' IDENTIFIED BY '$root_pw';"
  echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  if [ -n "$db" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"; fi
  if [ -n "$user" ]; then
    echo "CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$pw';"
    echo "ALTER USER '$user'@'%' IDENTIFIED BY '$pw';"
    if [ -n "$db" ]; then echo "GRANT ALL PRIVILEGES ON \`$db\`.* TO '$user'@'%';"; fi
  fi
} >"$init"
exec /usr/sbin/mariadbd @COMMON@ \
  --bind-address=0.0.0.0 --port=3306 --socket=/run/mysqld/mysqld.sock \
  --pid-file=/run/mysqld/mysqld.pid --skip-name-resolve --init-file="$init" "$@"
EOF
sed -i "s|@COMMON@|${common[*]}|" "$root/goneaway-entrypoint.sh"
chmod 0755 "$root/goneaway-entrypoint.sh"

# Smoke-test the entrypoint's shell syntax before importing.
sh -n "$root/goneaway-entrypoint.sh" || die "entrypoint has a syntax error"

tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/goneaway-entrypoint.sh"]' \
  --change 'EXPOSE 3306' \
  --change "LABEL goneaway.content=$content goneaway.mariadb.version=$version" \
  --message "goneaway mariadb $version from the host's mariadb-server" \
  - "$REPO:$version" >/dev/null
docker tag "$REPO:$version" "$REPO:$DEFAULT_TAG"

size=$(docker image inspect -f '{{ .Size }}' "$REPO:$version")
echo "build-image: built $REPO:$version and $REPO:$DEFAULT_TAG;" \
  "size $((size / 1000000)) MB; took $(elapsed) s"
