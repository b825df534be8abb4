// The cost of a new TCP connection: connect() + close() in a tight loop, timed per
// connection with CLOCK_MONOTONIC. Built by bench/connection-cost.sh with gcc -O2.
//
//   conncost serve PORT [6]
//       Listen on 0.0.0.0:PORT (with 6: on [::]:PORT, IPv6 only), accept and close every
//       connection, forever (the backend).
//       The scripts run two: 8080 behind the ClusterIP, 8081 for straight connections, so a
//       straight connection never reuses the 4-tuple a translated one had on the wire.
//   conncost measure OUT ROUNDS COUNT WARMUP LABEL=NETNS=IP:PORT[=CGROUP] ...   (IP: IPv4 or IPv6)
//       For each round, for each target (the order rotates by one every round, so drift
//       hits every target alike): with CGROUP (a cgroup v2 directory), move this process
//       into it first (its pid into CGROUP/cgroup.procs), as kubelet puts a pod's processes
//       in the pod's cgroup, so the cgroup socket programs attached above it see its
//       sockets; enter the target's network namespace (setns on the file
//       /run/netns/NAME, so no `ip netns exec` is ever timed), make WARMUP untimed
//       connections, then COUNT timed ones. Writes "LABEL ROUND NANOSECONDS" per timed
//       connection to OUT. Any failed connect aborts the run (exit 1).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int serve(int port, int ipv6) {
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // IPv6 only, so an IPv4 listener on the same port can sit beside it.
  if (ipv6) setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
  struct sockaddr_in6 address6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
  struct sockaddr *bound = ipv6 ? (struct sockaddr *)&address6 : (struct sockaddr *)&address;
  socklen_t length = ipv6 ? sizeof address6 : sizeof address;
  if (bind(listener, bound, length) != 0 || listen(listener, 4096) != 0) {
    perror("conncost serve");
    return 1;
  }
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    if (connection >= 0) close(connection);
  }
}

struct target {
  char *label;
  int netns;
  char *cgroup; // NULL: stay in the cgroup we are in
  struct sockaddr_storage address;
  socklen_t length;
};

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// One connection: socket, connect (returns once the SYN-ACK is in and the ACK sent),
// close (the FIN goes out; TIME_WAIT stays with the client). Returns the nanoseconds from
// before socket() to after close(), or -1.
static long long one_connection(const struct target *target) {
  long long start = now_ns();
  int fd = socket(target->address.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  // A lost SYN shows as a 1 s sample; fail after two retries rather than wait two minutes.
  int syn_retries = 2;
  setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syn_retries, sizeof syn_retries);
  if (connect(fd, (const struct sockaddr *)&target->address, target->length) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  close(fd);
  return now_ns() - start;
}

static int parse_target(char *spec, struct target *target) {
  // LABEL=NETNS=IP:PORT[=CGROUP], the port after the last colon (so IP may be IPv6)
  char *netns = strchr(spec, '=');
  if (!netns) return -1;
  *netns++ = 0;
  char *ip = strchr(netns, '=');
  if (!ip) return -1;
  *ip++ = 0;
  target->cgroup = strchr(ip, '=');
  if (target->cgroup) *target->cgroup++ = 0;
  char *port = strrchr(ip, ':');
  if (!port) return -1;
  *port++ = 0;
  char path[512];
  snprintf(path, sizeof path, "/run/netns/%s", netns);
  target->label = spec;
  target->netns = open(path, O_RDONLY | O_CLOEXEC);
  if (target->netns < 0) {
    perror(path);
    return -1;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)&target->address;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&target->address;
  memset(&target->address, 0, sizeof target->address);
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(atoi(port));
    target->length = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(atoi(port));
    target->length = sizeof *v6;
    return 0;
  }
  return -1;
}

// Moves this process (all of it: it has one thread) into cgroup v2 directory PATH.
static int enter_cgroup(const char *path) {
  char file[512];
  snprintf(file, sizeof file, "%s/cgroup.procs", path);
  FILE *procs = fopen(file, "w");
  if (!procs) return -1;
  fprintf(procs, "%d\n", getpid());
  return fclose(procs) == 0 ? 0 : -1;
}

static int measure(int argc, char **argv) {
  FILE *out = fopen(argv[0], "w");
  int rounds = atoi(argv[1]), count = atoi(argv[2]), warmup = atoi(argv[3]);
  int targets = argc - 4;
  if (!out || rounds < 1 || count < 1 || warmup < 0 || targets < 1) {
    fprintf(stderr, "conncost measure: bad arguments\n");
    return 2;
  }
  struct target *list = calloc(targets, sizeof *list);
  for (int t = 0; t < targets; t++) {
    if (parse_target(argv[4 + t], &list[t]) != 0) {
      fprintf(stderr, "conncost measure: bad target %s (LABEL=NETNS=IP:PORT)\n", argv[4 + t]);
      return 2;
    }
  }
  long long *samples = calloc(count, sizeof *samples);
  for (int round = 0; round < rounds; round++) {
    for (int k = 0; k < targets; k++) {
      struct target *target = &list[(round + k) % targets];
      if (target->cgroup && enter_cgroup(target->cgroup) != 0) {
        perror(target->cgroup);
        return 1;
      }
      if (setns(target->netns, CLONE_NEWNET) != 0) {
        perror("setns");
        return 1;
      }
      for (int i = 0; i < warmup + count; i++) {
        long long elapsed = one_connection(target);
        if (elapsed < 0) {
          fprintf(stderr, "conncost: %s: connect: %s\n", target->label, strerror(errno));
          return 1;
        }
        if (i >= warmup) samples[i - warmup] = elapsed;
      }
      for (int i = 0; i < count; i++) fprintf(out, "%s %d %lld\n", target->label, round, samples[i]);
    }
    fprintf(stderr, "conncost: round %d/%d done\n", round + 1, rounds);
  }
  return fclose(out) == 0 ? 0 : 1;
}

static int pace(int argc, char **argv) {
  FILE *out = fopen(argv[0], "w");
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  struct target target;
  if (!out || rate <= 0 || seconds <= 0 || parse_target(argv[3], &target) != 0) {
    fprintf(stderr, "conncost pace: bad arguments\n");
    return 2;
  }
  if (setns(target.netns, CLONE_NEWNET) != 0) {
    perror("setns");
    return 1;
  }
  long long total = (long long)(rate * seconds), made = 0, failed = 0;
  long long start = now_ns();
  for (long long i = 0; i < total; i++) {
    long long due = start + (long long)(i * 1e9 / rate);
    struct timespec at = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    if (one_connection(&target) < 0) failed++;
    else made++;
  }
  fprintf(out, "%s made %lld failed %lld seconds %.3f\n", target.label, made, failed,
          (now_ns() - start) / 1e9);
  return fclose(out) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]), 0);
  if (argc == 4 && strcmp(argv[1], "serve") == 0 && strcmp(argv[3], "6") == 0) return serve(atoi(argv[2]), 1);
  if (argc >= 7 && strcmp(argv[1], "measure") == 0) return measure(argc - 2, argv + 2);
  if (argc == 6 && strcmp(argv[1], "pace") == 0) return pace(argc - 2, argv + 2);
  fprintf(stderr,
          "usage: conncost serve PORT [6]\n"
          "       conncost measure OUT ROUNDS COUNT WARMUP LABEL=NETNS=IP:PORT[=CGROUP] ...\n"
          "       conncost pace OUT RATE SECONDS LABEL=NETNS=IP:PORT\n");
  return 2;
}
