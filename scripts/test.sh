#!/usr/bin/env bash
# The whole halex test suite: makes sure everything is installed (idempotent), lints, then pytest.
#   bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-demo
# the PostgreSQL store test starts a throw-away server: make sure one is installed (Debian)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "[test] installing PostgreSQL server (Debian package postgresql) for the store tests"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
# the batch-job tests start a throw-away single-node SLURM on localhost: its daemons and munge (Debian)
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing SLURM and munge (Debian packages slurm-wlm, munge) for the batch-job tests"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
fi
# one pytest worker per core (pytest-xdist), whole test files per worker (--dist loadfile: the
# throw-away SLURM and PostgreSQL servers of test_cluster.py and test_store.py start once),
# one thread each; HALEX_TEST_WORKERS=1 runs in one process with OMP_NUM_THREADS=2
workers=${HALEX_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
if [ "$workers" -gt 1 ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  xdist=(-n "$workers" --dist loadfile)
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
  xdist=()
fi
# lint first (pyflakes, pycodestyle, isort, pyupgrade; rules in pyproject.toml): seconds, and a failure stops here
echo "[test] ruff check"
.venv/bin/ruff check src tests benchmarks scripts examples
exec .venv/bin/python -m pytest "${xdist[@]}" "$@"
