"""The programs on interfaces' tcx hooks (Linux 6.6+), through the bpf(2) syscall, for
veth-prog-cost.sh, soak.py, limits.py and restarts.py (Debian 12's tc(8) and no bpftool here can show or change tcx):

    python3 bench/tcxprog.py ids IFNAME...           ids of every program on their tcx hooks
    python3 bench/tcxprog.py names IFNAME...         "IFNAME tcx-ingress:NAME" (or tcx-egress)
                                                     for each, in the order they run; nothing
                                                     on a kernel without tcx
    python3 bench/tcxprog.py list IFNAME...          "IFNAME tcx-ingress NAME ID TAG" each
    python3 bench/tcxprog.py replace-empty IFNAME... every program there replaced by one that
                                                     only returns TC_ACT_OK (loaded here)
    python3 bench/tcxprog.py clear IFNAME...         every program there detached

Run it in the interfaces' network namespace (ip netns exec). Attachments made with
BPF_PROG_ATTACH live as long as the interface, as Junction's own (--tc-hook tcx).
"""

import ctypes
import os
import socket
import struct
import sys

from bpfsyscall import bpf, bpf_call

BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY = 13, 15, 16
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
BPF_PROG_TYPE_SCHED_CLS = 3


def attached(index, attach_type):
    ids = (ctypes.c_uint32 * 64)()
    _, reply = bpf_call(BPF_PROG_QUERY, struct.pack("<IIIIQI", index, attach_type, 0, 0, ctypes.addressof(ids), 64))
    return list(ids[: struct.unpack_from("<I", reply.raw, 24)[0]])


def name_and_tag(prog_id):
    """(bpf_prog_info.name, .tag in hex) of a program."""
    fd = bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", prog_id))
    try:
        info = ctypes.create_string_buffer(256)
        bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, 256, ctypes.addressof(info)))
        return info.raw[64:80].split(b"\0")[0].decode(), info.raw[8:16].hex()
    finally:
        os.close(fd)


def programs(interfaces):
    """(interface, "tcx-ingress" or "tcx-egress", name, id, tag) of every program on the
    interfaces' tcx hooks, in the order they run; none on a kernel without tcx."""
    for name in interfaces:
        index = socket.if_nametoindex(name)
        for hook, attach_type in (("ingress", BPF_TCX_INGRESS), ("egress", BPF_TCX_EGRESS)):
            try:
                ids = attached(index, attach_type)
            except OSError as error:
                if error.errno == 22:  # EINVAL: a kernel without tcx has nothing there
                    return
                raise
            for prog_id in ids:
                prog_name, tag = name_and_tag(prog_id)
                yield name, f"tcx-{hook}", prog_name, prog_id, tag


def empty_program():
    # r0 = 0 (TC_ACT_OK); exit
    code = ctypes.create_string_buffer(struct.pack("<BBhiBBhi", 0xB7, 0, 0, 0, 0x95, 0, 0, 0))
    license_text = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_SCHED_CLS, 2, ctypes.addressof(code),
                       ctypes.addressof(license_text), 0, 0, 0, 0, 0, b"empty")
    return bpf(BPF_PROG_LOAD, attr)


def main():
    command, interfaces = sys.argv[1], sys.argv[2:]
    if command in ("names", "list"):
        for interface, hook, name, prog_id, tag in programs(interfaces):
            print(f"{interface} {hook}:{name}" if command == "names"
                  else f"{interface} {hook} {name} {prog_id} {tag}")
        return
    empty = empty_program() if command == "replace-empty" else None
    for name in interfaces:
        index = socket.if_nametoindex(name)
        for attach_type in (BPF_TCX_INGRESS, BPF_TCX_EGRESS):
            for prog_id in attached(index, attach_type):
                if command == "ids":
                    print(prog_id)
                    continue
                fd = bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", prog_id))
                if command == "replace-empty":
                    bpf(BPF_PROG_ATTACH, struct.pack("<IIIII", index, empty, attach_type, 1 << 2, fd))
                else:
                    bpf(BPF_PROG_DETACH, struct.pack("<IIII", index, fd, attach_type, 0))
                os.close(fd)


if __name__ == "__main__":
    main()
