#!/usr/bin/env bash
# Template checks CI keeps true: `sam validate --lint`, `sam build`, and a checkov IaC security scan, on
# template.yaml and on copies with every opt-in switched on. Quiet on success; on failure prints the failing
# tool's output and exits non-zero.
#
# checkov lives in its own tool venv (default .venv/iac-tools, created on first run from the version pinned in
# pyproject.toml's "iac" extra):
# its dependency pins clash with aws-sam-cli's, so it cannot share .venv. First install takes about 35 s
# and 270 MB; later runs reuse it.
#
# Environment: SAM (sam executable, default: sam on PATH), IAC_VENV (checkov venv), IAC_PYTHON (python
# used to create it), IAC_BUILD_DIR (sam build output, default .aws-sam/build), IAC_SKIP_BUILD=1 (skip sam build).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pin lives in pyproject.toml (optional-dependencies "iac"), the project's one source of dependencies.
CHECKOV_REQ=$(python3 -c 'import sys, tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["iac"][0])')
CHECKOV_VERSION="${CHECKOV_REQ#checkov==}"
SAM="${SAM:-sam}"
IAC_VENV="${IAC_VENV:-.venv/iac-tools}"
BUILD_DIR="${IAC_BUILD_DIR:-.aws-sam/build}"
export SAM_CLI_TELEMETRY=0

log=$(mktemp)
opt_in=$(mktemp --suffix=.yaml)
trap 'rm -f "$log" "$opt_in"' EXIT

run_quietly() { # name, command...
  local name=$1; shift
  if ! "$@" >"$log" 2>&1; then
    echo "iac_checks: $name failed:" >&2
    cat "$log" >&2
    exit 1
  fi
}

run_quietly "sam validate --lint" "$SAM" validate --lint --template template.yaml

if [ "${IAC_SKIP_BUILD:-0}" != "1" ]; then
  # python3.12 must be on PATH for BuildMethod python3.12 (the Makefile puts .venv/bin first).
  run_quietly "sam build" "$SAM" build --template template.yaml --build-dir "$BUILD_DIR" --cached --parallel
fi

if [ ! -x "$IAC_VENV/bin/checkov" ] || [ "$(cat "$IAC_VENV/.checkov-version" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  py="${IAC_PYTHON:-$(command -v python3.12 || command -v python3)}"
  run_quietly "creating the checkov venv ($IAC_VENV)" "$py" -m venv --clear "$IAC_VENV"
  run_quietly "installing checkov==$CHECKOV_VERSION" \
    "$IAC_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  echo "$CHECKOV_VERSION" >"$IAC_VENV/.checkov-version"
fi

# --skip-download: no call to Prisma Cloud (offline, no token). Suppressions live in the template as
# resource Metadata `checkov: skip: [{id, comment}]`, each with its reason.
run_quietly "checkov" "$IAC_VENV/bin/checkov" --quiet --compact --skip-download \
  --framework cloudformation secrets --file template.yaml --file samconfig.toml

# The opt-in resources and settings (delivery recovery, Jira reconciliation, silence alarms, the receiver's
# SnapStart or provisioned concurrency) carry Conditions that are false with the parameters' defaults: checkov
# leaves such resources out, and the template must validate and build with them on too. So each opt-in copy
# (scripts/opt_in_template.py: one with SnapStart, one with provisioned concurrency, which exclude each other)
# gets the same checks. The copies live outside the repository: --base-dir keeps CodeUri paths resolving here.
for variant in snapstart provisioned-concurrency; do
  run_quietly "opt-in copy ($variant)" sh -c 'python3 scripts/opt_in_template.py "$1" template.yaml >"$2"' _ "$variant" "$opt_in"
  run_quietly "sam validate --lint (opt-ins on, $variant)" "$SAM" validate --lint --template "$opt_in"
  if [ "${IAC_SKIP_BUILD:-0}" != "1" ]; then
    run_quietly "sam build (opt-ins on, $variant)" "$SAM" build --template "$opt_in" --base-dir . \
      --build-dir "$BUILD_DIR-opt-in-$variant" --cached --parallel
  fi
  run_quietly "checkov (opt-ins on, $variant)" "$IAC_VENV/bin/checkov" --quiet --compact --skip-download \
    --framework cloudformation --file "$opt_in"
done
