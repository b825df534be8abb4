// The cost of the datapath's flow events (bpf/lib/events.h), measured with
// BPF_PROG_TEST_RUN. Built by bench/flow-events.sh: gcc -O2 with libbpf and the repo's bpf/
// headers. Needs root.
//
//   flow-events perpacket BPFFS ENDPOINT.O NETDEV.O BASE_ENDPOINT.O BASE_NETDEV.O ROUNDS FIRST BATCHES
//            [DRAIN_EVERY]
//       Loads both object sets (this checkout's and the base revision's) with their maps
//       pinned in BPFFS (a private bpffs; the sets share the maps, as the agent's objects
//       do), and measures two programs:
//         from_endpoint: a ClusterIP 10.96.0.20:80/TCP, from a pod;
//         from_netdev:   a NodePort 192.0.2.1:30080/TCP with a backend on the node, from
//                        outside (DNAT only: no FIB, so no netns is needed);
//       this set at the monitor levels off, flows and all, and the base set at flows.
//       Each service's backend is its own frontend address and port, so DNAT leaves the
//       packet as it was and a repeated run (which reruns the program on the same skb)
//       keeps taking the established service path: the full path, every time.
//         first packet: SYNs of fresh connections (a new source port each), one run each
//                       (repeat=1): p50 and p90 of bpf_test_run's duration;
//         established:  an ACK of one connection, repeat=10000 per run (fewer than the
//                       ring holds): median of the runs' averages.
//       ROUNDS rounds, each giving every subject FIRST first packets and BATCHES
//       established runs, the subjects' order rotating, so load changes hit them alike.
//       The ring is drained (ring_buffer__consume) after every DRAIN_EVERY first packets
//       (default 1: each finds the ring empty, as an agent that keeps up leaves it) and
//       after every established run.
//       Prints one line per subject:
//         LEVEL PROGRAM first_p50 first_p90 established events lost
//   flow-events producers PROD.O SECONDS CPUS [CALLS_PER_SECOND]
//       Producer throughput of one BPF ring buffer shared by all CPUs against a per-CPU
//       perf event array, as issue 13 asks: flow-events-prod.bpf.c's raw_tp programs
//       (each call writes 1000 64-byte events with bpf_loop) are run with
//       BPF_F_TEST_RUN_ON_CPU on CPUs 0..CPUS-1 at once, one thread pinned per CPU, for
//       SECONDS (each at most CALLS_PER_SECOND calls a second when given: a rate the
//       consumer keeps up with, as in the agent), while one consumer thread drains (libbpf ring_buffer / perf_buffer). Every
//       transport gets 1 MiB in all (the ring 1 MiB; perf 1 MiB / CPUS per CPU): the ring
//       with the kernel's adaptive wakeup (consumer: epoll) and quiet (BPF_RB_NO_WAKEUP but
//       at half full; consumer: a 20 ms timed poll, then a drain, as the agent's
//       FlowConsumer), perf with a wakeup per record (libbpf's default) and with one per
//       quarter buffer. Prints:
//         TRANSPORT PRODUCERS written/s refused/s consumed/s ns-per-attempt ns-per-written
//       (the producers' CPU time in BPF_PROG_TEST_RUN per record attempted, and per record
//       written: a refused record costs little, so only the second compares transports).
//       ROUNDS (default 1) rounds interleave the subjects; ns-per-written is the median of
//       the rounds', the rates are over all rounds.
//   flow-events level PINNED_jnc_mon_cfg off|flows|all
//   flow-events lost PINNED_jnc_ev_lost
//       A running agent's monitor level, set as --monitor-level sets it at start; its ring's
//       lost events (summed over the CPUs).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/perf_event.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "junction_abi.h"

static void die(const char *what) {
  fprintf(stderr, "flow-events: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// ---- per-packet --------------------------------------------------------------------------

static uint16_t checksum(const void *data, int length) {
  const uint16_t *words = data;
  uint32_t sum = 0;
  for (int i = 0; i < length / 2; i++) sum += words[i];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

// Ethernet + IPv4 + TCP (no payload): 54 bytes.
static void frame(uint8_t *out, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
                  uint8_t flags) {
  memset(out, 0, 54);
  struct ethhdr *eth = (struct ethhdr *)out;
  memcpy(eth->h_dest, "\x02\0\0\0\0\x01", 6);
  memcpy(eth->h_source, "\x02\0\0\0\0\x02", 6);
  eth->h_proto = htons(ETH_P_IP);
  struct iphdr *ip = (struct iphdr *)(out + 14);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_TCP;
  ip->tot_len = htons(40);
  ip->saddr = saddr;
  ip->daddr = daddr;
  ip->check = checksum(ip, 20);
  struct tcphdr *tcp = (struct tcphdr *)(out + 34);
  tcp->source = sport;
  tcp->dest = dport;
  tcp->doff = 5;
  ((uint8_t *)tcp)[13] = flags;
  tcp->window = htons(65535);
}

static int map_fd(struct bpf_object *object, const char *name) {
  struct bpf_map *map = bpf_object__find_map_by_name(object, name);
  if (!map) {
    fprintf(stderr, "flow-events: no map %s\n", name);
    exit(1);
  }
  return bpf_map__fd(map);
}

static int prog_fd(struct bpf_object *object, const char *name) {
  struct bpf_program *program = bpf_object__find_program_by_name(object, name);
  if (!program) {
    fprintf(stderr, "flow-events: no program %s\n", name);
    exit(1);
  }
  return bpf_program__fd(program);
}

// A frontend address:port whose one backend (id `id`) is itself; `backend_flags`:
// JUNCTION_BE_F_*; `service_flags`: JUNCTION_SVC_F_*.
static void program_service(struct bpf_object *object, uint32_t address, uint16_t port,
                            uint32_t id, uint16_t rev_nat_id, uint8_t backend_flags,
                            uint16_t service_flags) {
  struct junction_lb4_backend_key backend_key = {.backend_id = id};
  struct junction_lb4_backend backend = {
      .address = address, .port = port, .proto = IPPROTO_TCP, .flags = backend_flags};
  struct junction_lb4_revnat_key revnat_key = {.rev_nat_id = rev_nat_id};
  struct junction_lb4_revnat revnat = {.address = address, .port = port};
  struct junction_lb4_service_key key = {.address = address, .port = port, .proto = IPPROTO_TCP};
  struct junction_lb4_service slot = {.backend_id = id};
  struct junction_lb4_service frontend = {
      .count = 1, .rev_nat_id = rev_nat_id, .flags = service_flags};

  if (bpf_map_update_elem(map_fd(object, JUNCTION_MAP_LB4_BACKENDS), &backend_key, &backend, 0) ||
      bpf_map_update_elem(map_fd(object, JUNCTION_MAP_LB4_REVNAT), &revnat_key, &revnat, 0))
    die("programming a backend");
  key.slot = 1;
  if (bpf_map_update_elem(map_fd(object, JUNCTION_MAP_LB4_SERVICES), &key, &slot, 0)) die("slot");
  key.slot = 0;
  if (bpf_map_update_elem(map_fd(object, JUNCTION_MAP_LB4_SERVICES), &key, &frontend, 0))
    die("frontend");
}

static uint64_t events_seen;
// First packets between two drains of the ring: 1 (the default) is the agent's ring between
// connections, read as soon as woken, so each first packet finds it drained (and, with the
// kernel's adaptive wakeup, pays a wakeup); more models a consumer that lags behind.
static int drain_every = 1;

static int count_event(void *context, void *data, size_t size) {
  (void)context;
  (void)data;
  (void)size;
  events_seen++;
  return 0;
}

static uint32_t run(int fd, const uint8_t *packet, uint32_t repeat) {
  uint8_t out[256];
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = 54, .data_out = out,
              .data_size_out = sizeof(out), .repeat = repeat);
  if (bpf_prog_test_run_opts(fd, &opts)) die("BPF_PROG_TEST_RUN");
  if (opts.retval == TC_ACT_SHOT) {
    fprintf(stderr, "flow-events: the packet was dropped\n");
    exit(1);
  }
  return opts.duration;
}

static int by_value(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile(uint32_t *values, int count, double p) {
  qsort(values, count, sizeof(*values), by_value);
  return values[(int)(p * (count - 1))];
}

static uint64_t lost_events(struct bpf_object *object) {
  int cpus = libbpf_num_possible_cpus();
  struct junction_events_lost values[cpus];
  uint32_t zero = 0;
  uint64_t sum = 0;
  if (bpf_map_lookup_elem(map_fd(object, JUNCTION_MAP_EVENTS_LOST), &zero, values)) return 0;
  for (int i = 0; i < cpus; i++) sum += values[i].events;
  return sum;
}

// What one program of one object set at one level is measured with, and its samples.
struct subject {
  const char *label;  // "off", "flows", "all", "base"
  const char *name;   // program
  int fd;
  uint32_t level;
  uint32_t client;    // network order; a /16 of its own
  uint32_t frontend;  // network order
  uint16_t port;      // network order
  uint32_t *first;
  int first_count;
  uint32_t *established;
  int established_count;
  uint64_t events;
  uint64_t lost;
  int next_port;
};

static void set_level(int config_fd, uint32_t level) {
  struct junction_monitor_config config = {.level = level};
  uint32_t zero = 0;
  if (bpf_map_update_elem(config_fd, &zero, &config, 0)) die("jnc_mon_cfg");
}

// One round of a subject: `first` SYNs of new connections, then `batches` repeated runs of
// its established connection's ACK. The ring is drained as it goes.
static void measure_round(struct subject *s, int config_fd, struct ring_buffer *ring,
                          struct bpf_object *object, int first, int batches) {
  uint8_t packet[54];
  uint64_t lost_before = lost_events(object);
  set_level(config_fd, s->level);
  events_seen = 0;
  for (int i = 0; i < first; i++, s->next_port++) {
    frame(packet, s->client + htonl((uint32_t)(s->next_port >> 14) & 0xff),
          htons(10000 + (s->next_port & 0x3fff)), s->frontend, s->port, 0x02);
    s->first[s->first_count++] = run(s->fd, packet, 1);
    if (i % drain_every == drain_every - 1) ring_buffer__consume(ring);
  }
  ring_buffer__consume(ring);
  frame(packet, s->client + htonl(0x100), htons(9999), s->frontend, s->port, 0x10);
  for (int i = 0; i < batches; i++) {
    s->established[s->established_count++] = run(s->fd, packet, 10000);
    ring_buffer__consume(ring);
  }
  s->events += events_seen;
  s->lost += lost_events(object) - lost_before;
}

static struct bpf_object *load(const char *path, const char *bpffs) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpffs);
  struct bpf_object *object = bpf_object__open_file(path, &opts);
  if (!object) die(path);
  if (bpf_object__load(object)) die(path);
  return object;
}

static int perpacket(int argc, char **argv) {
  if (argc != 10 && argc != 11) {
    fprintf(stderr,
            "usage: flow-events perpacket BPFFS ENDPOINT.O NETDEV.O BASE_ENDPOINT.O BASE_NETDEV.O "
            "ROUNDS FIRST BATCHES [DRAIN_EVERY]\n");
    return 2;
  }
  if (argc == 11 && atoi(argv[10]) > 0) drain_every = atoi(argv[10]);
  const char *bpffs = argv[2];
  int rounds = atoi(argv[7]), first = atoi(argv[8]), batches = atoi(argv[9]);
  // Both sets share the maps (pinned by name in one bpffs), as the agent's objects do.
  struct bpf_object *objects[4] = {load(argv[3], bpffs), load(argv[4], bpffs),
                                   load(argv[5], bpffs), load(argv[6], bpffs)};
  int config_fd = map_fd(objects[0], JUNCTION_MAP_MONITOR_CONFIG);
  struct ring_buffer *ring =
      ring_buffer__new(map_fd(objects[0], JUNCTION_MAP_EVENTS), count_event, NULL, NULL);
  if (!ring) die("ring_buffer__new");
  uint32_t vip = htonl(0x0a600014), node = htonl(0xc0000201);
  program_service(objects[0], vip, htons(80), 1, 7, 0, 0);
  program_service(objects[0], node, htons(30080), 2, 8, JUNCTION_BE_F_LOCAL,
                  JUNCTION_SVC_F_EXTERNAL);

  // The base set (the revision before netdev.c's events) at the default level.
  const char *labels[4] = {"off", "flows", "all", "base"};
  uint32_t levels[4] = {JUNCTION_MONITOR_OFF, JUNCTION_MONITOR_FLOWS, JUNCTION_MONITOR_ALL,
                        JUNCTION_MONITOR_FLOWS};
  struct subject subjects[8];
  for (int v = 0; v < 4; v++) {
    for (int p = 0; p < 2; p++) {
      struct bpf_object *object = objects[(v == 3 ? 2 : 0) + p];
      struct subject *s = &subjects[v * 2 + p];
      *s = (struct subject){
          .label = labels[v],
          .name = p == 0 ? "from_endpoint" : "from_netdev",
          .fd = prog_fd(object, p == 0 ? JUNCTION_PROG_FROM_ENDPOINT : JUNCTION_PROG_FROM_NETDEV),
          .level = levels[v],
          .client = htonl((p == 0 ? 0x0a000000u : 0xc6000000u) | (uint32_t)(v + 1) << 16),
          .frontend = p == 0 ? vip : node,
          .port = p == 0 ? htons(80) : htons(30080),
          .first = calloc((size_t)rounds * first, sizeof(uint32_t)),
          .established = calloc((size_t)rounds * batches, sizeof(uint32_t)),
      };
      // Its established connection, opened once.
      uint8_t packet[54];
      frame(packet, s->client + htonl(0x100), htons(9999), s->frontend, s->port, 0x02);
      run(s->fd, packet, 1);
    }
  }
  ring_buffer__consume(ring);
  // Rounds interleave the subjects, so the machine's changing load hits them alike.
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < 8; i++) {
      struct subject *s = &subjects[(i + r) % 8];
      measure_round(s, config_fd, ring, objects[0], first, batches);
    }
  }
  for (int i = 0; i < 8; i++) {
    struct subject *s = &subjects[i];
    double p50 = percentile(s->first, s->first_count, 0.5);
    double p90 = percentile(s->first, s->first_count, 0.9);
    double established = percentile(s->established, s->established_count, 0.5);
    printf("%s %s %.0f %.0f %.1f %llu %llu\n", s->label, s->name, p50, p90, established,
           (unsigned long long)s->events, (unsigned long long)s->lost);
  }
  ring_buffer__free(ring);
  for (int i = 3; i >= 0; i--) bpf_object__close(objects[i]);
  return 0;
}

// ---- producers ---------------------------------------------------------------------------

struct producer {
  int fd;
  int cpu;
  int pace_ns;  // at least this long from one call's start to the next's; 0: no pause
  uint64_t calls;
  uint64_t busy_ns;
};

static atomic_int stop_producers;
static atomic_int stop_consumer;
static atomic_ullong consumed;

static void *produce(void *context) {
  struct producer *p = context;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(p->cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = p->cpu);
  // The thread's CPU time, not the wall clock: the consumer thread preempting a producer
  // (2 CPUs, 3 threads) must not count as the producer's cost.
  uint64_t next = now_ns();
  while (!atomic_load(&stop_producers)) {
    uint64_t start = thread_ns();
    if (bpf_prog_test_run_opts(p->fd, &opts)) die("BPF_PROG_TEST_RUN (raw_tp)");
    p->busy_ns += thread_ns() - start;
    p->calls++;
    if (p->pace_ns) {
      next += (uint64_t)p->pace_ns;
      uint64_t now = now_ns();
      if (next > now) usleep((useconds_t)((next - now) / 1000));
    }
  }
  return NULL;
}

static int ring_sample(void *context, void *data, size_t size) {
  (void)context;
  (void)data;
  (void)size;
  atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
  return 0;
}

static void perf_sample(void *context, int cpu, void *data, __u32 size) {
  (void)context;
  (void)cpu;
  (void)data;
  (void)size;
  atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
}

static void perf_lost(void *context, int cpu, __u64 count) {
  (void)context;
  (void)cpu;
  (void)count;  // counted by the program itself, as for the ring
}

// perf_buffer__new_raw's callback: every record, samples and lost reports alike.
static enum bpf_perf_event_ret perf_raw(void *context, int cpu, struct perf_event_header *event) {
  (void)context;
  (void)cpu;
  if (event->type == PERF_RECORD_SAMPLE)
    atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
  return LIBBPF_PERF_EVENT_CONT;
}

struct consumer {
  struct ring_buffer *ring;
  struct perf_buffer *perf;
  int timed;  // quiet ring: woken only at half full, so drain after every timed poll
};

static void *consume(void *context) {
  struct consumer *c = context;
  while (!atomic_load(&stop_consumer)) {
    if (c->ring && c->timed) {
      ring_buffer__poll(c->ring, 20);
      ring_buffer__consume(c->ring);
    } else if (c->ring) {
      ring_buffer__poll(c->ring, 100);
    } else {
      perf_buffer__poll(c->perf, 100);
    }
  }
  if (c->ring) ring_buffer__consume(c->ring);
  else perf_buffer__consume(c->perf);
  return NULL;
}

static uint64_t counter(struct bpf_object *object, const char *map, uint32_t index) {
  int cpus = libbpf_num_possible_cpus();
  uint64_t values[cpus], sum = 0;
  if (bpf_map_lookup_elem(map_fd(object, map), &index, values)) die(map);
  for (int i = 0; i < cpus; i++) sum += values[i];
  return sum;
}

// perfbuf: libbpf's default, a wakeup per record (wakeup_events 1); perfbuf-batched: a
// wakeup once a quarter of the CPU's buffer is written (wakeup_watermark).
static const char *transports[] = {"ringbuf", "ringbuf-quiet", "perfbuf", "perfbuf-batched"};

struct transport_run {
  double written, refused, consumed, elapsed;
  uint64_t busy_ns, calls;
};

// Transport `t` with `n` producing CPUs for `seconds`, a fresh object (and buffer) each time.
static struct transport_run run_transport(const char *path, int t, int n, int cpus,
                                          double seconds, int pace_ns) {
  struct bpf_object *object = bpf_object__open_file(path, NULL);
  if (!object) die(path);
  // 1 MiB in all for either transport.
  bpf_map__set_max_entries(bpf_object__find_map_by_name(object, "perf_events"), 0);
  if (bpf_object__load(object)) die(path);
  struct consumer c = {0};
  if (t <= 1) {
    c.timed = t == 1;
    c.ring = ring_buffer__new(map_fd(object, "ring_events"), ring_sample, NULL, NULL);
    if (!c.ring) die("ring_buffer__new");
  } else {
    long page = sysconf(_SC_PAGESIZE), pages = (1 << 20) / cpus / page;
    if (t == 2) {
      c.perf = perf_buffer__new(map_fd(object, "perf_events"), pages, perf_sample, perf_lost, NULL,
                                NULL);
    } else {
      struct perf_event_attr attr = {
          .type = PERF_TYPE_SOFTWARE,
          .config = PERF_COUNT_SW_BPF_OUTPUT,
          .sample_type = PERF_SAMPLE_RAW,
          .sample_period = 1,
          .watermark = 1,
          .wakeup_watermark = (uint32_t)(pages * page / 4),
      };
      c.perf =
          perf_buffer__new_raw(map_fd(object, "perf_events"), pages, &attr, perf_raw, NULL, NULL);
    }
    if (!c.perf) die("perf_buffer__new");
  }
  int fd = prog_fd(object, t == 0   ? "produce_ring"
                           : t == 1 ? "produce_ring_quiet"
                                    : "produce_perf");
  struct producer p[16];
  pthread_t threads[16], consumer_thread;
  struct transport_run result = {0};
  atomic_store(&stop_producers, 0);
  atomic_store(&stop_consumer, 0);
  atomic_store(&consumed, 0);
  pthread_create(&consumer_thread, NULL, consume, &c);
  uint64_t start = now_ns();
  for (int i = 0; i < n; i++) {
    p[i] = (struct producer){.fd = fd, .cpu = i, .pace_ns = pace_ns};
    pthread_create(&threads[i], NULL, produce, &p[i]);
  }
  usleep((useconds_t)(seconds * 1e6));
  atomic_store(&stop_producers, 1);
  for (int i = 0; i < n; i++) {
    pthread_join(threads[i], NULL);
    result.busy_ns += p[i].busy_ns;
    result.calls += p[i].calls;
  }
  result.elapsed = (now_ns() - start) / 1e9;
  usleep(200000);
  atomic_store(&stop_consumer, 1);
  pthread_join(consumer_thread, NULL);
  result.written = (double)counter(object, "produced", 0);
  result.refused = (double)counter(object, "produced", 1);
  result.consumed = (double)atomic_load(&consumed);
  if (c.ring) ring_buffer__free(c.ring);
  if (c.perf) perf_buffer__free(c.perf);
  bpf_object__close(object);
  return result;
}

static int by_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int producers(int argc, char **argv) {
  if (argc < 5 || argc > 7) {
    fprintf(stderr,
            "usage: flow-events producers PROD.O SECONDS CPUS [CALLS_PER_SECOND [ROUNDS]]\n");
    return 2;
  }
  double seconds = atof(argv[3]);
  int cpus = atoi(argv[4]);
  int pace_ns = argc >= 6 && atoi(argv[5]) > 0 ? 1000000000 / atoi(argv[5]) : 0;
  int rounds = argc == 7 && atoi(argv[6]) > 0 ? atoi(argv[6]) : 1;
  if (cpus > 16) cpus = 16;
  int subjects = 4 * cpus;
  struct transport_run totals[64] = {0};
  double per_written[64][32];
  if (rounds > 32) rounds = 32;
  // Rounds interleave the subjects (rotating their order), so load changes hit them alike;
  // the figure per subject is the median of its rounds' ns per record written.
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < subjects; k++) {
      int i = (k + r) % subjects, t = i / cpus, n = i % cpus + 1;
      struct transport_run one = run_transport(argv[2], t, n, cpus, seconds, pace_ns);
      totals[i].written += one.written;
      totals[i].refused += one.refused;
      totals[i].consumed += one.consumed;
      totals[i].elapsed += one.elapsed;
      totals[i].busy_ns += one.busy_ns;
      totals[i].calls += one.calls;
      per_written[i][r] = one.written ? (double)one.busy_ns / one.written : 0;
    }
  }
  for (int i = 0; i < subjects; i++) {
    struct transport_run *s = &totals[i];
    qsort(per_written[i], rounds, sizeof(double), by_double);
    printf("%s %d %.0f %.0f %.0f %.1f %.1f\n", transports[i / cpus], i % cpus + 1,
           s->written / s->elapsed, s->refused / s->elapsed, s->consumed / s->elapsed,
           s->calls ? (double)s->busy_ns / (s->calls * 1000.0) : 0, per_written[i][rounds / 2]);
  }
  return 0;
}

static int print_warnings(enum libbpf_print_level level, const char *format, va_list args) {
  return level == LIBBPF_WARN ? vfprintf(stderr, format, args) : 0;
}

// ---- a running agent's maps ----------------------------------------------------------------

// `flow-events level PINNED_jnc_mon_cfg off|flows|all`: what --monitor-level sets at start.
// `flow-events lost PINNED_jnc_ev_lost`: the events the ring could not take, summed.
static int pinned(int argc, char **argv) {
  if (argc < 3) return 2;
  int fd = bpf_obj_get(argv[2]);
  if (fd < 0) die(argv[2]);
  uint32_t zero = 0;
  if (!strcmp(argv[1], "level")) {
    struct junction_monitor_config config = {.level = JUNCTION_MONITOR_OFF};
    if (argc != 4) return 2;
    if (!strcmp(argv[3], "flows")) config.level = JUNCTION_MONITOR_FLOWS;
    else if (!strcmp(argv[3], "all")) config.level = JUNCTION_MONITOR_ALL;
    if (bpf_map_update_elem(fd, &zero, &config, 0)) die("jnc_mon_cfg");
    return 0;
  }
  int cpus = libbpf_num_possible_cpus();
  struct junction_events_lost values[cpus];
  uint64_t sum = 0;
  if (bpf_map_lookup_elem(fd, &zero, values)) die("jnc_ev_lost");
  for (int i = 0; i < cpus; i++) sum += values[i].events;
  printf("%llu\n", (unsigned long long)sum);
  return 0;
}

int main(int argc, char **argv) {
  // Warnings only: a verifier rejection shows its log.
  libbpf_set_print(print_warnings);
  if (argc > 1 && !strcmp(argv[1], "perpacket")) return perpacket(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "producers")) return producers(argc, argv);
  if (argc > 1 && (!strcmp(argv[1], "level") || !strcmp(argv[1], "lost")))
    return pinned(argc, argv);
  fprintf(stderr, "usage: flow-events perpacket ... | producers ...\n");
  return 2;
}
