// The stand-in L7 proxy of bench/proxy-redirect.sh: a listener with IP_TRANSPARENT (as
// Envoy's `transparent: true` listeners), so it can accept connections the datapath hands it
// with a Service address as their destination (bpf_sk_assign) and answer from that address.
// Built by bench/proxy-redirect.sh with gcc -O2.
//
//   proxysink close PORT     accept every connection and close it once the client has
//                            (connection cost). The client closing first keeps TIME_WAIT
//                            on its side: a proxy-side TIME_WAIT socket bound to VIP:port
//                            would make the kernel drop a later SYN reusing its 4-tuple
//                            (see bench/README.md, "proxy-redirect.sh").
//   proxysink drain PORT     accept, read every connection to its end, one thread each
//                            (throughput)
//   proxysink send NETNS IP:PORT BYTES
//                            enter /run/netns/NETNS, connect, send BYTES from a 256 KiB
//                            buffer, shut down writing, wait for the peer's close; prints
//                            "BYTES SECONDS" (from before connect to the peer's close)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *drain(void *arg) {
  int fd = (int)(long)arg;
  static __thread char buffer[1 << 18];
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
  close(fd);
  return NULL;
}

static int serve(int port, int draining) {
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(listener, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) {
    perror("proxysink: IP_TRANSPARENT");
    return 1;
  }
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
    perror("proxysink serve");
    return 1;
  }
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    if (connection < 0) continue;
    if (!draining) {
      char byte;
      while (read(connection, &byte, 1) > 0) {
      }
      close(connection);
      continue;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, drain, (void *)(long)connection) == 0)
      pthread_detach(thread);
    else
      close(connection);
  }
}

static int send_bytes(const char *netns, char *target, long long bytes) {
  char path[256];
  snprintf(path, sizeof path, "/run/netns/%s", netns);
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
    perror(path);
    return 1;
  }
  char *colon = strchr(target, ':');
  if (!colon) return 2;
  *colon = 0;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
  inet_pton(AF_INET, target, &address.sin_addr);
  static char buffer[1 << 18];
  memset(buffer, 'x', sizeof buffer);
  double start = now();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    perror("proxysink send: connect");
    return 1;
  }
  long long left = bytes;
  while (left > 0) {
    ssize_t n = write(fd, buffer, left < (long long)sizeof buffer ? left : sizeof buffer);
    if (n <= 0) {
      perror("proxysink send: write");
      return 1;
    }
    left -= n;
  }
  shutdown(fd, SHUT_WR);
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
  printf("%lld %.6f\n", bytes, now() - start);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "close")) return serve(atoi(argv[2]), 0);
  if (argc == 3 && !strcmp(argv[1], "drain")) return serve(atoi(argv[2]), 1);
  if (argc == 5 && !strcmp(argv[1], "send")) return send_bytes(argv[2], argv[3], atoll(argv[4]));
  fprintf(stderr, "usage: proxysink close|drain PORT | send NETNS IP:PORT BYTES\n");
  return 2;
}
