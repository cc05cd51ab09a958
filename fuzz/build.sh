#!/usr/bin/env bash
# Builds one libFuzzer target, compiled with libFuzzer coverage + AddressSanitizer:
#
#   fuzz/build.sh [yaml|plan|audit]     (default yaml; prints the binary's path)
#
#   yaml   fuzz/.build/FuzzYAMLLoader   Spec + Crypto, harness Sources/FuzzYAMLLoader
#   plan   fuzz/.build/FuzzPlanFile     Reconciler (+ Spec, StateStore, Postgres, Audit, Crypto), harness Sources/FuzzPlanFile
#   audit  fuzz/.build/FuzzAuditChain   Audit + Crypto, harness Sources/FuzzAuditChain
#
# Why swiftc and not `swift build --package-path fuzz`: the main package exports only the
# `orgctl` executable product, so a package in fuzz/ cannot depend on the Spec module, and the
# harness needs Spec's internal decoding layer (`@testable import Spec`, i.e. -enable-testing).
#
# Environment: FUZZ_PUBLIC_API=1 builds the variant that goes through the public
#              ConfigurationLoader().load(path:) on a tmpfs file instead (slower, see README).
set -euo pipefail
target="${1:-yaml}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/.build"
mkdir -p "$out/modules"

sanitize="-sanitize=fuzzer,address"
common=(-swift-version 6 -O -g -wmo -parse-as-library "$sanitize"
        -enable-upcoming-feature ExistentialAny
        -enable-upcoming-feature InternalImportsByDefault
        -enable-upcoming-feature MemberImportVisibility
        -I "$out/modules" -I "$root/Sources/CYAML" -I "$root/Sources/CCrypto" -I "$root/Sources/CSQLite"
        -I "$root/Sources/CPostgres" -Xcc "-I$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)"
        -warnings-as-errors)

# Rebuilds a module only when one of its sources is newer than its object file.
module() {
    local name="$1"; shift
    local object="$out/$name.o"
    local sources=("$root/Sources/$name"/*.swift "$root/Sources/$name"/*/*.swift)
    local existing=()
    for s in "${sources[@]}"; do [[ -e "$s" ]] && existing+=("$s"); done
    if [[ -f "$object" && -z "$(find "${existing[@]}" "$0" -newer "$object" 2>/dev/null | head -1)" ]]; then
        return
    fi
    echo "build.sh: compiling $name (${#existing[@]} files)" >&2
    swiftc "${common[@]}" "$@" -module-name "$name" -c "${existing[@]}" -o "$object" \
        -emit-module -emit-module-path "$out/modules/$name.swiftmodule"
    touch "$object"  # the compiler may leave an unchanged object file's time as it was
}

case "$target" in
yaml)
    module Crypto
    module Spec -enable-testing
    flags=()
    if [[ "${FUZZ_PUBLIC_API:-0}" == 1 ]]; then flags+=(-D FUZZ_PUBLIC_API); binary="$out/FuzzYAMLLoaderPublic"
    else binary="$out/FuzzYAMLLoader"; fi
    echo "build.sh: linking $(basename "$binary")" >&2
    swiftc "${common[@]}" "${flags[@]}" -module-name FuzzYAMLLoader \
        "$here/Sources/FuzzYAMLLoader/FuzzYAMLLoader.swift" "$out/Spec.o" "$out/Crypto.o" \
        -use-ld=lld -lyaml -lcrypto -o "$binary"
    ;;
plan)
    module Crypto
    module Spec -enable-testing
    module Audit
    module Postgres
    module StateStore
    module Reconciler
    binary="$out/FuzzPlanFile"
    echo "build.sh: linking $(basename "$binary")" >&2
    swiftc "${common[@]}" -module-name FuzzPlanFile "$here/Sources/FuzzPlanFile/FuzzPlanFile.swift" \
        "$out/Reconciler.o" "$out/StateStore.o" "$out/Postgres.o" "$out/Audit.o" "$out/Spec.o" "$out/Crypto.o" \
        -use-ld=lld -lyaml -lcrypto -lsqlite3 -lpq -o "$binary"
    ;;
audit)
    module Crypto
    module Audit
    binary="$out/FuzzAuditChain"
    echo "build.sh: linking $(basename "$binary")" >&2
    swiftc "${common[@]}" -module-name FuzzAuditChain "$here/Sources/FuzzAuditChain/FuzzAuditChain.swift" \
        "$out/Audit.o" "$out/Crypto.o" -use-ld=lld -lcrypto -o "$binary"
    ;;
*) echo "usage: $0 [yaml|plan|audit]" >&2; exit 2 ;;
esac
echo "$binary"
