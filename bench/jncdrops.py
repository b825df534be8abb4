#!/usr/bin/env python3
"""Junction's drop counters from a node's bpffs: one line per (reason, direction) with
packets, the names taken from bpf/junction_abi.h. Used by bench/northsouth.sh to show
why a path lost packets; reads the pinned jnc_drops (a per-CPU hash of struct
junction_drop_key -> struct junction_drop_counters) with the bpf syscall, read-only.

  jncdrops.py BPFFS_DIR ABI_HEADER
"""

import ctypes
import os
import re
import struct
import sys

from bpfsyscall import bpf

BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_OBJ_GET = 1, 4, 7


def possible_cpus():
    count = 0
    for part in open("/sys/devices/system/cpu/possible").read().strip().split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def names(header, enum):
    body = re.search(r"enum " + enum + r" \{(.*?)\};", open(header).read(), re.S).group(1)
    return {int(value): name for name, value in re.findall(r"(JUNCTION_\w+) = (\d+)", body)}


def main():
    directory, header = sys.argv[1], sys.argv[2]
    reasons = names(header, "junction_drop_reason")
    directions = names(header, "junction_direction")
    path = ctypes.create_string_buffer(os.path.join(directory, "jnc_drops").encode())
    fd = bpf(BPF_OBJ_GET, struct.pack("QII", ctypes.addressof(path), 0, 0))
    cpus = possible_cpus()
    key, previous = ctypes.create_string_buffer(8), None
    while True:
        previous_address = ctypes.addressof(previous) if previous is not None else 0
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, struct.pack("IIQQ", fd, 0, previous_address, ctypes.addressof(key)))
        except OSError:
            break
        value = ctypes.create_string_buffer(16 * cpus)
        bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("IIQQQ", fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0))
        packets = sum(struct.unpack_from("QQ", value.raw, 16 * cpu)[0] for cpu in range(cpus))
        reason, direction = struct.unpack("II", key.raw)
        print(f"{reasons.get(reason, reason)} {directions.get(direction, direction)} {packets}")
        previous = ctypes.create_string_buffer(key.raw, 8)
    os.close(fd)


if __name__ == "__main__":
    main()
