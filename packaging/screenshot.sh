#!/usr/bin/env bash
# Re-take resources/screenshot.png: the real window under Xvfb, with the demo clip and a model.
#   packaging/screenshot.sh [MODEL] [OUTPUT]   (MODEL defaults to the shipped default model)
# Needs: apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
#        libxcb-render-util0 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-cursor0
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/default.safetensors}"
OUT="${2:-resources/screenshot.png}"
# Fresh settings, so the shot never depends on this machine's preferences.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data"
unset QT_QPA_PLATFORM
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
xvfb-run -a -s "-screen 0 1600x900x24" "$PY" -m restorer.gui.app resources/demo_bw.mp4 \
  --model "$MODEL" --screenshot "$OUT" --frame 60 --size 1440x860
