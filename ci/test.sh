#!/usr/bin/env bash
# The project's checks, as CI runs them: formatting, lints, then every test (the README's
# test command). Servers, containers and temp dirs are the harness's to clean up; the
# last step fails the run if any were left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# Without the default features (docker, mysql-async): what a dev-dependency user who
# only needs sqlx and the process backend builds. Only --lib and --bins: the test targets
# depend on the crate itself with its defaults on, which would re-enable them.
cargo clippy --no-default-features --lib --bins --quiet -- -D warnings
start=$(date +%s)
cargo test
echo "ci/test.sh: cargo test took $(( $(date +%s) - start ))s"

# Nothing of ours may outlive the tests.
sleep 1
left=$(pgrep -a -f -- '--datadir=.*goneaway-' || true)
if [ -n "$left" ]; then echo "ci/test.sh: servers left running:"; echo "$left"; exit 1; fi
# Adapters: the shipped one runs from goneaway's cache dir; the tests' own from temp dirs.
left=$(pgrep -a -f -- 'adapters-[0-9.]*/(sqlalchemy_adapter-[0-9a-f]*\.py|go-[0-9a-f]*/go-adapter|node_adapter-[0-9a-f]*\.js|java-[0-9a-f]*/classes)|(minimal|fake)_adapter\.py' || true)
if [ -n "$left" ]; then echo "ci/test.sh: adapters left running:"; echo "$left"; exit 1; fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ours=$(docker ps -aq --filter label=goneaway.owner.pid; docker network ls -q --filter label=goneaway.owner.pid)
  if [ -n "$ours" ]; then echo "ci/test.sh: containers or networks left behind:"; echo "$ours"; exit 1; fi
fi
echo "ci/test.sh: nothing left behind"
