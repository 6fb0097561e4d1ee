#!/usr/bin/env bash
# Fails when schemas/abi/*.json differ from the ABIs the contract sources compile to
# (the committed ABIs are the only place the backend takes selectors and topics from).
# Fix with: node deploy/devchain/build.mjs --write-abi
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node "$here/build.mjs" --check-abi >/dev/null
echo "check-abi: schemas/abi is up to date with deploy/devchain/contracts"
