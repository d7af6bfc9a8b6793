#!/usr/bin/env bash
# Build the one-folder app dist/restorer-desk with PyInstaller, then smoke-test it.
#
#   packaging/build.sh               build + smoke checks
#   packaging/build.sh --no-smoke    build only
#
# Environment:
#   PYTHON                 interpreter to use (default: .venv/bin/python if present, else python3)
#   RESTORER_BUNDLE_MODEL  model to bundle as models/default.safetensors (default: models/default.*)
#   SMOKE_MODEL            model for the smoke colourize when the bundle has none (default: a tiny
#                          random one, written to the temp folder)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

SMOKE=1
for arg in "$@"; do
    case "$arg" in
        --no-smoke) SMOKE=0 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

if ! "$PYTHON" -c 'import PyInstaller' 2>/dev/null; then
    echo "build.sh: installing PyInstaller" >&2
    "$PYTHON" -m pip install --quiet "pyinstaller>=6.5"
fi

APP=dist/restorer-desk
EXE="$APP/restorer-desk"

echo "build.sh: PyInstaller $("$PYTHON" -m PyInstaller --version), $(nproc 2>/dev/null || echo '?') cores" >&2
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/restorer-desk.spec
end=$(date +%s)

# Desktop integration files, ready to copy into ~/.local/share (or /usr/share).
mkdir -p "$APP/share/applications"
cp packaging/restorer-desk.desktop "$APP/share/applications/"
if [[ -d resources/icons/hicolor ]]; then
    mkdir -p "$APP/share/icons"
    cp -r resources/icons/hicolor "$APP/share/icons/"
    mkdir -p "$APP/share/icons/hicolor/scalable/apps"
    cp resources/icons/restorer.svg "$APP/share/icons/hicolor/scalable/apps/restorer.svg"
fi

# What went in, for the smoke tests and for whoever unpacks the folder later.
{
    echo "version=$("$PYTHON" -c 'import restorer; print(restorer.__version__)')"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_seconds=$((end - start))"
    if [[ -f restorer/gui/app.py ]]; then echo "gui=yes"; else echo "gui=no"; fi
    if [[ -f "$APP/_internal/models/default.safetensors" ]]; then echo "model=yes"; else echo "model=no"; fi
} > "$APP/BUILD-INFO.txt"

echo "build.sh: built $EXE in $((end - start)) s; bundle $(du -sh "$APP" | cut -f1)" >&2

if [[ "$SMOKE" == 0 ]]; then
    exit 0
fi

export QT_QPA_PLATFORM=offscreen
tmp="$(mktemp -d "${TMPDIR:-/tmp}/restorer-desk-smoke.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "build.sh: smoke: --version" >&2
want="restorer $("$PYTHON" -c 'import restorer; print(restorer.__version__)')"
got="$("$EXE" --version)"
if [[ "$got" != "$want" ]]; then
    echo "build.sh: FAIL: '$EXE --version' said '$got', expected '$want'" >&2
    exit 1
fi

echo "build.sh: smoke: doctor" >&2
"$EXE" doctor | tee "$tmp/doctor.txt" >&2
if ! grep -q "_internal/ffmpeg/ffmpeg" "$tmp/doctor.txt"; then
    echo "build.sh: FAIL: the frozen app does not use its bundled ffmpeg" >&2
    exit 1
fi

model_args=()
if [[ ! -f "$APP/_internal/models/default.safetensors" ]]; then
    model="${SMOKE_MODEL:-}"
    if [[ -z "$model" ]]; then
        model="$tmp/tiny.safetensors"
        echo "build.sh: no bundled model; smoke colourize uses a tiny random one" >&2
        "$PYTHON" - "$model" <<'EOF'
import sys

import torch

from restorer.checkpoint import ModelMeta, save_model
from restorer.nets.registry import build_net

torch.manual_seed(0)
spec = {"arch": "unet", "base": 4, "depth": 2}
net = build_net(spec).eval()
meta = ModelMeta(arch=net.spec() if hasattr(net, "spec") else spec, working_size=32,
                 name="tiny-smoke", description="random tiny network for the build smoke test")
save_model(sys.argv[1], net, meta)
EOF
    fi
    model_args=(--model "$model")
fi

echo "build.sh: smoke: headless colourize of resources/demo_bw.mp4" >&2
out="$tmp/demo_colour.mp4"
"$EXE" colourize resources/demo_bw.mp4 -o "$out" --quiet "${model_args[@]}"
"$PYTHON" - resources/demo_bw.mp4 "$out" <<'EOF'
import sys

from restorer.media import probe

src, dst = probe(sys.argv[1]), probe(sys.argv[2])
assert dst.frame_count == src.frame_count, (src.frame_count, dst.frame_count)
assert (dst.width, dst.height) == (src.width, src.height), (src, dst)
assert len(dst.audio) == len(src.audio), (src.audio, dst.audio)
print(f"build.sh: smoke: {dst.frame_count} frames, {dst.width}x{dst.height}, "
      f"{len(dst.audio)} audio stream(s): OK", file=sys.stderr)
EOF
echo "build.sh: all smoke checks passed" >&2
