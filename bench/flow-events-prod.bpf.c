// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Producers for `flow-events producers` (bench/flow-events.c): the same 64-byte record
 * written 1000 times per call (bpf_loop) into one BPF ring buffer shared by all CPUs
 * (reserve, fill, submit: produce_ring with the kernel's adaptive wakeup, a wakeup whenever
 * the consumer had caught up; produce_ring_quiet with BPF_RB_NO_WAKEUP and one forced wakeup
 * when the ring crosses half full, as lib/events.h does, the consumer polling on a timer) or
 * into a per-CPU perf event array (bpf_perf_event_output from a stack copy, as Cilium's
 * monitor does).
 * `produced` counts, per CPU, [0] records written and [1] records refused (full).
 * Built by bench/flow-events.sh; raw_tp so BPF_PROG_TEST_RUN can run it on a chosen CPU.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct record {
	__u64 words[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ring_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} produced SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&produced, &index);

	if (value)
		*value += 1;
}

static long ring_one(__u32 index, void *data)
{
	struct record *record = bpf_ringbuf_reserve(&ring_events, sizeof(*record), 0);

	if (!record) {
		count(1);
		return 0;
	}
	__builtin_memset(record, 0, sizeof(*record));
	record->words[0] = bpf_ktime_get_ns();
	record->words[1] = index;
	bpf_ringbuf_submit(record, 0);
	count(0);
	return 0;
}

/* As lib/events.h's jnc_event_submit: no wakeup, except for the record that takes the ring
 * past half full. */
static long ring_quiet_one(__u32 index, void *data)
{
	const __u64 half = (1 << 20) / 2;
	struct record *record = bpf_ringbuf_reserve(&ring_events, sizeof(*record), 0);
	__u64 queued;

	if (!record) {
		count(1);
		return 0;
	}
	__builtin_memset(record, 0, sizeof(*record));
	record->words[0] = bpf_ktime_get_ns();
	record->words[1] = index;
	queued = bpf_ringbuf_query(&ring_events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(record, queued >= half && queued < half + sizeof(*record) + 8
					   ? BPF_RB_FORCE_WAKEUP
					   : BPF_RB_NO_WAKEUP);
	count(0);
	return 0;
}

/* bpf_loop hands its callback a pointer to the caller's stack only: the program's context
 * travels in this. */
struct loop_context {
	void *context;
};

static long perf_one(__u32 index, void *data)
{
	struct loop_context *loop = data;
	struct record record = {};

	record.words[0] = bpf_ktime_get_ns();
	record.words[1] = index;
	if (bpf_perf_event_output(loop->context, &perf_events, BPF_F_CURRENT_CPU, &record,
				  sizeof(record)) < 0)
		count(1);
	else
		count(0);
	return 0;
}

SEC("raw_tp")
int produce_ring(void *context)
{
	bpf_loop(1000, ring_one, NULL, 0);
	return 0;
}

SEC("raw_tp")
int produce_ring_quiet(void *context)
{
	bpf_loop(1000, ring_quiet_one, NULL, 0);
	return 0;
}

SEC("raw_tp")
int produce_perf(void *context)
{
	struct loop_context loop = { .context = context };

	bpf_loop(1000, perf_one, &loop, 0);
	return 0;
}
