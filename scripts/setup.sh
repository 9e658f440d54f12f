#!/usr/bin/env bash
# halex set-up from a fresh clone: Debian's cp2k and chromium, a virtual environment .venv with the
# CPU build of PyTorch and halex with every extra, .venv-ptycho with py4DSTEM (its own numpy<2),
# then the demo on the default engine.
#   bash scripts/setup.sh            # install + demo
#   bash scripts/setup.sh --no-demo  # install only (used by scripts/test.sh)
# Environment: PYTHON (interpreter, default python3), TORCH_SPEC (default torch==2.13.0;
# elsewhere e.g. "torch --index-url https://download.pytorch.org/whl/cpu").
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1
[ "${1:-}" = "--no-demo" ] && demo=0
py=${PYTHON:-python3}
quiet_pip() { "$@" 2>&1 | { grep -v -E "WARNING: Location|^$" || true; }; return "${PIPESTATUS[0]}"; }

# Debian packages: CP2K (DFT engine), Chromium and its driver (the report's browser test)
need=()
command -v cp2k.psmp >/dev/null 2>&1 || need+=(cp2k)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($py --version)"
  $py -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing PyTorch (CPU) first: ${TORCH_SPEC:-torch==2.13.0}"
  # shellcheck disable=SC2086
  quiet_pip .venv/bin/pip install -q ${TORCH_SPEC:-torch==2.13.0}
fi
echo "[setup] installing halex with all extras"
quiet_pip .venv/bin/pip install -q -e ".[all]"
.venv/bin/halex --version

# py4DSTEM (GPL, ptychography for `halex stem phase --method ptycho`) requires numpy<2, which
# halex's environment cannot hold: it gets its own environment, which halex runs as a subprocess
if ! .venv-ptycho/bin/python -c "import py4DSTEM" >/dev/null 2>&1; then
  echo "[setup] creating .venv-ptycho with py4DSTEM 0.14.18 (numpy<2) for ptychography"
  $py -m venv .venv-ptycho
  quiet_pip .venv-ptycho/bin/pip install -q "py4DSTEM==0.14.18" "numpy<2"
fi

if [ "$demo" = 1 ]; then
  echo "[setup] running the demo (output in demo-output/)"
  .venv/bin/halex demo -o demo-output
fi
