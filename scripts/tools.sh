#!/usr/bin/env bash
# Installs the pinned local tools into .tools/ (one virtualenv each: SAM and moto pin
# different botocore lines) and adds the aarch64 target for `sam build`.
# Idempotent: a tool whose venv already has the pinned version is not reinstalled.
# Usage: scripts/tools.sh [moto] [sam] [lambda]   (no argument: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${PUENTE_TOOLS:-$PWD/.tools}"
MOTO_VERSION=5.2.5
SAM_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
CARGO_LAMBDA_VERSION=1.9.2

venv() { # name, marker, packages...
  local name=$1 marker=$2; shift 2
  if [ -f "$TOOLS/$name/.installed" ] && [ "$(cat "$TOOLS/$name/.installed")" = "$marker" ]; then return 0; fi
  python3 -m venv "$TOOLS/$name"
  "$TOOLS/$name/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$marker" > "$TOOLS/$name/.installed"
}

want=("$@"); [ ${#want[@]} -gt 0 ] || want=(moto sam lambda)
pids=()
for t in "${want[@]}"; do
  case "$t" in
    moto)   venv moto "moto==$MOTO_VERSION" "moto[server]==$MOTO_VERSION" & pids+=($!) ;;
    sam)    venv sam "sam==$SAM_VERSION cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_VERSION" "cfn-lint==$CFN_LINT_VERSION" & pids+=($!) ;;
    lambda) venv lambda "cargo-lambda==$CARGO_LAMBDA_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" & pids+=($!)
            rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || rustup target add aarch64-unknown-linux-gnu ;;
    *) echo "unknown tool: $t" >&2; exit 2 ;;
  esac
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
