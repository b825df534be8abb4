// The backend of bench/northsouth.sh: a small HTTP/1.1 server, one thread, epoll, that
// answers every GET with 200 and a body naming the peer it saw ("peer 172.30.0.100:41234"),
// so the script can tell which source address reached the pod (the client's through DSR,
// the ingress node's through SNAT and MASQUERADE). Keep-alive; a request that says
// "Connection: close" gets "Connection: close" back and the server then waits for the
// client to close first, so TIME_WAIT stays on the client. (Were the server to close first,
// its TIME_WAIT sockets would meet SYNs from reused NAT ports: through MASQUERADE
// --random-fully a share of them are dropped by the PAWS check and wait a 1 s SYN
// retransmit, which would measure that clash rather than the path.) Small and single-threaded
// on purpose: what is measured is the path to it, and its own cost must be small and equal
// for every path. Built by bench/northsouth.sh with gcc -O2.
//
//   nshttp PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUFFER = 4096, MAX_EVENTS = 256 };

struct connection {
  int fd;
  size_t used;
  char peer[64];
  char buffer[BUFFER];
};

static void drop(int epoll, struct connection *c) {
  epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

// Answers every complete request in the buffer; returns 0 to keep the connection, -1 to
// close it (a write that failed, a request that does not fit).
static int answer(struct connection *c) {
  for (;;) {
    char *end = memmem(c->buffer, c->used, "\r\n\r\n", 4);
    if (end == NULL) return c->used == BUFFER ? -1 : 0;
    size_t length = (size_t)(end - c->buffer) + 4;
    c->buffer[length - 1] = '\0';
    int close_after = strcasestr(c->buffer, "\r\nconnection: close") != NULL;
    char body[96], response[256];
    int body_length = snprintf(body, sizeof body, "peer %s\n", c->peer);
    int response_length = snprintf(response, sizeof response,
                                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s",
                                   body_length, close_after ? "Connection: close\r\n" : "", body);
    // Small enough for the socket buffer: one send, whole or failed.
    if (send(c->fd, response, (size_t)response_length, MSG_NOSIGNAL) != response_length) return -1;
    memmove(c->buffer, c->buffer + length, c->used - length);
    c->used -= length;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: nshttp PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
    perror("nshttp");
    return 1;
  }
  int epoll = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int ready = epoll_wait(epoll, events, MAX_EVENTS, -1);
    for (int i = 0; i < ready; i++) {
      struct connection *c = events[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          struct sockaddr_in peer;
          socklen_t peer_length = sizeof peer;
          int fd = accept4(listener, (struct sockaddr *)&peer, &peer_length, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          char ip[INET_ADDRSTRLEN];
          inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
          snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(peer.sin_port));
          struct epoll_event add = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &add);
        }
        continue;
      }
      ssize_t got = recv(c->fd, c->buffer + c->used, BUFFER - c->used, 0);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(epoll, c);
        continue;
      }
      if (got > 0) c->used += (size_t)got;
      if (answer(c) != 0) drop(epoll, c);
    }
  }
}
