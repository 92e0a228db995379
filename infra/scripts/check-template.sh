#!/usr/bin/env bash
# Lints every synthesized template with cfn-lint (plus the serverless rules) and checkov.
# Both fail on any failure. Suppressions live next to their resources (Metadata), with reasons.
# Usage: scripts/check-template.sh [cdk.out | --preflight]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-cdk.out}
venv=../.venv/bin
for tool in cfn-lint checkov; do
  if [ ! -x "$venv/$tool" ]; then
    echo "error: $venv/$tool is missing. Install the checkers into the workspace's virtual environment:" >&2
    echo "  python3 -m venv ../.venv && ../.venv/bin/pip install cfn-lint cfn-lint-serverless checkov" >&2
    exit 2
  fi
done
if ! "$venv/python3" -c 'import cfn_lint_serverless' 2>/dev/null; then
  echo "error: cfn-lint-serverless is missing: ../.venv/bin/pip install cfn-lint-serverless" >&2
  exit 2
fi
# `--preflight`: only check that the tools are installed (before spending time on synth).
if [ "$out" = "--preflight" ]; then
  exit 0
fi

shopt -s nullglob
templates=("$out"/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "error: no templates in $out (run npm run synth)" >&2
  exit 2
fi

echo "cfn-lint (with cfn-lint-serverless rules): ${templates[*]}"
# Warnings count too: --non-zero-exit-code informational makes any finding fail.
"$venv/cfn-lint" --append-rules cfn_lint_serverless.rules --non-zero-exit-code informational -- "${templates[@]}"
echo "cfn-lint: no findings"

echo "checkov: ${templates[*]}"
for template in "${templates[@]}"; do
  "$venv/checkov" --quiet --compact --skip-download --framework cloudformation --file "$template"
done
echo "checkov: no failed checks"
