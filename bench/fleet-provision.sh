#!/usr/bin/env bash
# Provisions COUNT roots in parallel from one repository, the way a fleet
# script would: each root gets the source, the desired state, and an apply.
# With STORE, every root shares that content store (conary init --store).
#   fleet-provision.sh CONARY URL PUBKEY DESIRED.json ROOTS_DIR COUNT PARALLEL [STORE]
set -euo pipefail
conary=$1 url=$2 pub=$3 desired=$4 roots=$5 count=$6 parallel=$7 store=${8:-}
provision() {
  local root=$roots/host$1
  mkdir -p "$root"
  node "$conary" init --root "$root" ${store:+--store "$store"} >/dev/null
  node "$conary" source add fleet "$url" --trust "$pub" --root "$root" >/dev/null
  node "$conary" source sync --root "$root" >/dev/null
  node "$conary" desired set --file "$desired" --root "$root" >/dev/null
  node "$conary" apply --json --root "$root" >/dev/null
}
export -f provision
export conary url pub desired roots store
seq 1 "$count" | xargs -P "$parallel" -I{} bash -c 'provision {}'
