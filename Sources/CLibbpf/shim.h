// libbpf as Debian 12 ships it (1.1.x): objects, maps, tc hooks. BPFKit is its only user.
#pragma once
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
