#!/usr/bin/env bash
# Build the eBPF datapath: every bpf/*.c to one BPF ELF object, <name>.o.
#
#   install/build-bpf.sh [OUTDIR]     default: <repo>/.build/bpf
#
# Prints the path of each object it wrote, one per line, on stdout (diagnostics go to
# stderr), so callers can capture them. The agent loads endpoint.o; the tests build into a
# temporary directory with this script.
#
# Extra compiler flags: $BPF_CFLAGS (e.g. -DJNC_BUILD_VARIANT=2, bpf/lib/variant.h).
#
# Compiler: $CLANG if set, else the Swift toolchain's clang (it has the BPF backend, so the
# machine needs no second LLVM), else `clang` on PATH. Headers: libbpf-dev (bpf/bpf_helpers.h)
# and linux-libc-dev (linux/bpf.h, asm/types.h).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "build-bpf: error: $*" >&2
    exit 1
}

supports_bpf() {
    # Into a variable first: `| grep -q` under pipefail fails when clang is still writing.
    local targets
    targets="$("$1" -print-targets 2>/dev/null)" || return 1
    grep -qw bpf <<<"$targets"
}

find_clang() {
    local candidates=()
    [[ -n "${CLANG:-}" ]] && candidates+=("$CLANG")
    candidates+=(/opt/swift/usr/bin/clang)
    # Wherever the toolchain is installed: clang sits next to swift.
    if command -v swift >/dev/null 2>&1; then
        candidates+=("$(dirname "$(readlink -f "$(command -v swift)")")/clang")
    fi
    command -v clang >/dev/null 2>&1 && candidates+=("$(command -v clang)")
    local c
    for c in "${candidates[@]}"; do
        if [[ -x "$c" ]] && supports_bpf "$c"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

clang_bin="$(find_clang)" ||
    die "no clang with the BPF backend found (tried \$CLANG, /opt/swift/usr/bin/clang, the swift toolchain, clang on PATH); install the Swift toolchain or: apt-get install clang"

# -target bpf does not search the host's multiarch include directory, yet linux/types.h
# includes <asm/types.h>, which Debian installs only there (linux-libc-dev).
multiarch="$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")"

[[ -f /usr/include/bpf/bpf_helpers.h ]] ||
    die "bpf/bpf_helpers.h not found; install it with: apt-get install libbpf-dev"
[[ -f /usr/include/linux/bpf.h && -f "/usr/include/$multiarch/asm/types.h" ]] ||
    die "linux/bpf.h or $multiarch/asm/types.h not found; install them with: apt-get install linux-libc-dev"

# A relative OUTDIR is taken relative to the caller's directory, as usual; only the
# default lives under the repo root.
out="${1:-$repo_root/.build/bpf}"
[[ "$out" == /* ]] || out="$PWD/$out"
mkdir -p "$out"

shopt -s nullglob
sources=("$repo_root"/bpf/*.c)
((${#sources[@]} > 0)) || die "no sources in $repo_root/bpf"

for src in "${sources[@]}"; do
    obj="$out/$(basename "${src%.c}").o"
    # Compile to a temporary name and rename: a concurrent reader (a test, an agent
    # starting) never sees a half-written object.
    tmp="$(mktemp "$obj.XXXXXX")"
    # -g: BTF, which libbpf needs for the map definitions (__type) and the kernel for
    # verifier messages with source lines. -mcpu=v3: fixed ISA (kernel >= 5.1) rather than
    # whatever the compiler defaults to.
    # shellcheck disable=SC2086 # BPF_CFLAGS: extra flags, word-split on purpose.
    if ! "$clang_bin" -target bpf -mcpu=v3 -O2 -g -Wall -Werror ${BPF_CFLAGS:-} \
        -I "$repo_root/bpf" -I "/usr/include/$multiarch" \
        -c "$src" -o "$tmp"; then
        rm -f "$tmp"
        die "compiling $src failed"
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$obj"
    echo "$obj"
done
