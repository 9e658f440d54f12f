#!/usr/bin/env bash
# The anchor libraries the benchmarks compare against, each in its own virtual environment
# under benchmarks/.anchors/ (git-ignored). They are never imported by halex: Atomap is GPL,
# pyglotaran LGPL, DebyeCalculator Apache-2.0 with its own torch, icet MPL-2.0 (built from its sdist).
#   bash benchmarks/setup_anchors.sh            # all four
#   bash benchmarks/setup_anchors.sh atomap     # one
set -euo pipefail
cd "$(dirname "$0")"
py=${PYTHON:-python3}
want=${*:-atomap debye glotaran icet}
mk() {  # name, pip arguments...
  local name=$1; shift
  if [ ! -x ".anchors/$name/bin/python" ]; then
    echo "[anchors] creating .anchors/$name"
    $py -m venv ".anchors/$name"
  fi
  echo "[anchors] installing into .anchors/$name: $*"
  ".anchors/$name/bin/pip" install -q "$@"
}
for w in $want; do
  case $w in
    atomap) mk atomap "atomap>=0.4" ;;
    debye) mk debye "${TORCH_SPEC:-torch==2.13.0}" && mk debye "debyecalculator>=1.0" ;;
    glotaran) mk glotaran "pyglotaran>=0.7" ;;
    icet) mk icet "icet>=3.0" ;;
    *) echo "unknown anchor $w (atomap, debye, glotaran, icet)"; exit 2 ;;
  esac
done
