"""The bpf(2) syscall for the bench's Python helpers (jncdrops.py, progstats.py,
tcxprog.py), which read and change BPF objects without bpftool (not in Debian 12's
packages here)."""

import ctypes
import os

SYS_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
_libc = ctypes.CDLL(None, use_errno=True)


def bpf_call(command, attributes):
    """bpf(command, attr) with `attributes` (bytes) as the start of a zeroed 144-byte
    union bpf_attr: (result, the attr buffer as the kernel left it). Raises OSError."""
    buffer = ctypes.create_string_buffer(attributes, 144)
    result = _libc.syscall(SYS_BPF, command, buffer, 144)
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bpf command {command}: {os.strerror(error)}")
    return result, buffer


def bpf(command, attributes):
    """bpf_call's result alone (a descriptor, or 0)."""
    return bpf_call(command, attributes)[0]
