#!/usr/bin/env bash
# Builds fuzz/.build/FuzzYAMLLoader: the Spec module (and Crypto, which it imports) compiled
# with libFuzzer coverage + AddressSanitizer, linked with the harness in Sources/FuzzYAMLLoader.
#
# Why swiftc and not `swift build --package-path fuzz`: the main package exports only the
# `orgctl` executable product, so a package in fuzz/ cannot depend on the Spec module, and the
# harness needs Spec's internal decoding layer (`@testable import Spec`, i.e. -enable-testing).
#
# Environment: FUZZ_PUBLIC_API=1 builds the variant that goes through the public
#              ConfigurationLoader().load(path:) on a tmpfs file instead (slower, see README).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/.build"
mkdir -p "$out/modules"

sanitize="-sanitize=fuzzer,address"
common=(-swift-version 6 -O -g -wmo -parse-as-library "$sanitize"
        -enable-upcoming-feature ExistentialAny
        -enable-upcoming-feature InternalImportsByDefault
        -enable-upcoming-feature MemberImportVisibility
        -I "$out/modules" -I "$root/Sources/CYAML" -I "$root/Sources/CCrypto"
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

module Crypto
module Spec -enable-testing

flags=()
if [[ "${FUZZ_PUBLIC_API:-0}" == 1 ]]; then flags+=(-D FUZZ_PUBLIC_API); binary="$out/FuzzYAMLLoaderPublic"
else binary="$out/FuzzYAMLLoader"; fi
echo "build.sh: linking $(basename "$binary")" >&2
swiftc "${common[@]}" "${flags[@]}" -module-name FuzzYAMLLoader \
    "$here/Sources/FuzzYAMLLoader/FuzzYAMLLoader.swift" "$out/Spec.o" "$out/Crypto.o" \
    -use-ld=lld -lyaml -lcrypto -o "$binary"
echo "$binary"
