"""Run time of BPF programs by id, from the kernel's own accounting (kernel.bpf_stats_enabled):
opens each program by id (BPF_PROG_GET_FD_BY_ID) and reads run_cnt and run_time_ns from its
fdinfo. Prints "ID RUNS NANOSECONDS" per program. Used by veth-prog-cost.sh.

    python3 bench/progstats.py ID...
"""

import ctypes
import os
import sys

SYS_BPF = 321  # x86_64
BPF_PROG_GET_FD_BY_ID = 13


def program_stats(prog_id):
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 4)(prog_id, 0, 0, 0)
    fd = libc.syscall(SYS_BPF, BPF_PROG_GET_FD_BY_ID, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"program {prog_id}: {os.strerror(ctypes.get_errno())}")
    try:
        fields = {}
        with open(f"/proc/self/fdinfo/{fd}") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        return int(fields.get("run_cnt", 0)), int(fields.get("run_time_ns", 0))
    finally:
        os.close(fd)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        runs, nanoseconds = program_stats(int(arg))
        print(arg, runs, nanoseconds)
