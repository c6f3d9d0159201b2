// Kernel floor of one-event fan-out over loopback: N TCP connections to a reader process that
// reads every socket with epoll (like a WebSocket client would); this process writes one
// ~300-byte frame to each socket, one event at a time, and reports its own CPU per frame
// (user + system, getrusage) and the time to write all N.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct rusage r; getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6; }

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000, events = argc > 2 ? atoi(argv[2]) : 20;
  int ls = socket(AF_INET, SOCK_STREAM, 0); int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(0x7f000001)};
  bind(ls, (void *)&a, sizeof a); listen(ls, 4096); socklen_t al = sizeof a; getsockname(ls, (void *)&a, &al);
  pid_t child = fork();
  if (child == 0) { // reader: connects n sockets, reads with epoll until it saw n*events frames
    int ep = epoll_create1(0); char buf[65536]; long want = (long)n * events * 300, got = 0;
    for (int i = 0; i < n; i++) { int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(s, (void *)&a, sizeof a); struct epoll_event e = {.events = EPOLLIN, .data.fd = s}; epoll_ctl(ep, EPOLL_CTL_ADD, s, &e); }
    struct epoll_event evs[256];
    while (got < want) { int k = epoll_wait(ep, evs, 256, 5000); if (k <= 0) break;
      for (int i = 0; i < k; i++) { ssize_t r; while ((r = read(evs[i].data.fd, buf, sizeof buf)) > 0) got += r; } }
    _exit(0);
  }
  int *fds = malloc(sizeof(int) * n);
  for (int i = 0; i < n; i++) { fds[i] = accept(ls, 0, 0); setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
  char frame[300]; memset(frame, 'x', sizeof frame);
  usleep(200000);
  double c0 = cpu(), worst = 0;
  for (int e = 0; e < events; e++) { double t0 = now();
    for (int i = 0; i < n; i++) if (write(fds[i], frame, sizeof frame) != sizeof frame) { perror("write"); return 1; }
    double t = now() - t0; if (t > worst) worst = t; usleep(50000); }
  double used = cpu() - c0;
  printf("%d sockets x %d events: sender CPU %.2f us per frame (user+sys), slowest event written in %.1f ms\n",
         n, events, used * 1e6 / ((double)n * events), worst * 1e3);
  waitpid(child, 0, 0); return 0;
}
