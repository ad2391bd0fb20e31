/* smtp_sink [-p] [-c] [-r BYTES_PER_S] [-b RCVBUF] ADDR PORT: an SMTP server that
 * accepts every message and replies at once, for benchmarks.
 *
 * One thread, epoll, non-blocking sockets, any number of connections. EHLO offers
 * 8BITMIME, plus PIPELINING with -p and CHUNKING (BDAT) with -c; without them BDAT is
 * refused. Pipelined commands are answered in order, all replies of one read in one
 * write. -r reads each connection at a steady rate (a slow reader); -b sets the
 * accepted sockets' receive buffer. Prints "ready PORT"; on SIGUSR1 prints
 * "connections N messages N bytes N bursts N held N", on SIGTERM/SIGINT prints that
 * and exits.
 *
 * bursts counts the writes of replies to what a client sent (the greeting not
 * included): each is one round trip the client waited for, when the client sends
 * each batch of commands in one write.
 *
 * SIGUSR2 starts holding: each connection that sends MAIL FROM from then on gets no
 * reply to it (nor to anything after it) and is counted in "held" until SIGHUP,
 * which stops holding and answers them all. For measuring deliveries in flight.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINEMAX 8192

enum mode { CMD, DATA, BDAT };

struct conn {
  int fd;
  enum mode mode;
  int dot;              /* DATA: progress through "\r\n.\r\n", 2 = at line start */
  uint64_t bdat_left;   /* BDAT: bytes of the chunk still to read */
  int bdat_last;
  int closing;          /* QUIT answered: close once the replies are out */
  int throttled;        /* -r: waiting for the next tick */
  int held;             /* SIGUSR2: stopped at MAIL FROM until SIGHUP */
  double budget;        /* -r: bytes this connection may still read */
  size_t inlen;
  char in[LINEMAX];
  size_t outlen, outcap, outoff;
  char *out;
  struct conn *prev, *next;  /* every open connection, for the -r ticks */
};

static struct conn *conns;

static int pipelining, chunking, rcvbuf;
static double rate;
static unsigned long long n_conn, n_msg, n_bytes, n_bursts, n_held;
static volatile sig_atomic_t stop, report, hold_on, hold_off;
static int holding;
static int ep;

static void on_signal(int sig)
{
  if (sig == SIGUSR1) report = 1;
  else if (sig == SIGUSR2) hold_on = 1;
  else if (sig == SIGHUP) hold_off = 1;
  else stop = 1;
}

static void put(struct conn *c, const char *s)
{
  size_t n = strlen(s);
  if (c->outlen + n > c->outcap) {
    c->outcap = (c->outlen + n) * 2 + 256;
    c->out = realloc(c->out, c->outcap);
    if (!c->out) { perror("smtp_sink: realloc"); exit(1); }
  }
  memcpy(c->out + c->outlen, s, n);
  c->outlen += n;
}

static void drop(struct conn *c)
{
  if (c->held) --n_held;
  if (c->prev) c->prev->next = c->next; else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->out);
  free(c);
}

/* Write what is pending; 0 when the connection is gone. */
static int flush(struct conn *c)
{
  while (c->outoff < c->outlen) {
    ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
    if (w < 0 && errno == EAGAIN) break;
    if (w <= 0) { drop(c); return 0; }
    c->outoff += (size_t)w;
  }
  if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
  if (c->closing && !c->outlen) { drop(c); return 0; }
  struct epoll_event ev = { .events = (c->throttled || c->held ? 0 : EPOLLIN)
                                      | (c->outlen ? EPOLLOUT : 0), .data.ptr = c };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return 1;
}

static int verb(const char *line, const char *v)
{
  return strncasecmp(line, v, strlen(v)) == 0;
}

static void command(struct conn *c, char *line)
{
  char reply[128];
  if (verb(line, "EHLO")) {
    put(c, "250-sink.bench\r\n");
    if (pipelining) put(c, "250-PIPELINING\r\n");
    if (chunking) put(c, "250-CHUNKING\r\n");
    put(c, "250 8BITMIME\r\n");
  } else if (verb(line, "HELO")) put(c, "250 sink.bench\r\n");
  else if (verb(line, "MAIL")) put(c, "250 2.1.0 Ok\r\n");
  else if (verb(line, "RCPT")) put(c, "250 2.1.5 Ok\r\n");
  else if (verb(line, "DATA")) { put(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
                                 c->mode = DATA; c->dot = 2; }
  else if (verb(line, "BDAT") && chunking) {
    char *end;
    unsigned long long n = strtoull(line + 4, &end, 10);
    while (*end == ' ') ++end;
    c->bdat_left = n;
    c->bdat_last = verb(end, "LAST");
    c->mode = BDAT;
    if (!n) {  /* an empty chunk: answered at once */
      c->mode = CMD;
      if (c->bdat_last) { ++n_msg; put(c, "250 2.0.0 Ok: queued\r\n"); }
      else put(c, "250 2.0.0 0 bytes ok\r\n");
    }
  }
  else if (verb(line, "RSET") || verb(line, "NOOP")) put(c, "250 2.0.0 Ok\r\n");
  else if (verb(line, "QUIT")) { put(c, "221 2.0.0 Bye\r\n"); c->closing = 1; }
  else { snprintf(reply, sizeof reply, "502 5.5.2 Error: command not recognized\r\n");
         put(c, reply); }
}

/* Consume n bytes of message content; returns how many were used. */
static size_t content(struct conn *c, const char *p, size_t n)
{
  if (c->mode == BDAT) {
    size_t take = n < c->bdat_left ? n : (size_t)c->bdat_left;
    c->bdat_left -= take;
    n_bytes += take;
    if (!c->bdat_left) {
      c->mode = CMD;
      if (c->bdat_last) { ++n_msg; put(c, "250 2.0.0 Ok: queued\r\n"); }
      else put(c, "250 2.0.0 chunk ok\r\n");
    }
    return take;
  }
  size_t i = 0;
  while (i < n) {
    if (c->dot == 0) {  /* mid-line: skip to the next CR */
      const char *cr = memchr(p + i, '\r', n - i);
      if (!cr) { i = n; break; }
      i = (size_t)(cr - p) + 1;
      c->dot = 1;
      continue;
    }
    char ch = p[i++];
    switch (c->dot) {
      case 1: c->dot = ch == '\n' ? 2 : ch == '\r' ? 1 : 0; break;
      case 2: c->dot = ch == '.' ? 3 : ch == '\r' ? 1 : 0; break;
      case 3: c->dot = ch == '\r' ? 4 : 0; break;
      case 4:
        if (ch == '\n') {
          c->mode = CMD;
          ++n_msg;
          put(c, "250 2.0.0 Ok: queued\r\n");
          n_bytes += i;
          return i;
        }
        c->dot = ch == '\r' ? 1 : 0;
        break;
    }
  }
  n_bytes += i;
  return i;
}

/* Answer what is in the buffer; 0 when stopped at a held MAIL FROM. */
static void process(struct conn *c)
{
  size_t off = 0, before = c->outlen;
  while (off < c->inlen && !c->closing) {
    if (c->mode != CMD) { off += content(c, c->in + off, c->inlen - off); continue; }
    char *nl = memchr(c->in + off, '\n', c->inlen - off);
    if (!nl) {
      if (off == 0 && c->inlen == sizeof c->in) {  /* a line too long: discard it */
        put(c, "500 5.5.2 Line too long\r\n");
        off = c->inlen;
      }
      break;
    }
    if (holding && verb(c->in + off, "MAIL")) { c->held = 1; ++n_held; break; }
    *nl = 0;
    if (nl > c->in + off && nl[-1] == '\r') nl[-1] = 0;
    command(c, c->in + off);
    off = (size_t)(nl - c->in) + 1;
  }
  memmove(c->in, c->in + off, c->inlen - off);
  c->inlen -= off;
  if (c->outlen > before) ++n_bursts;
}

static void on_readable(struct conn *c)
{
  if (c->held) { drop(c); return; }  /* only a hang-up wakes a held connection */
  for (;;) {
    size_t room = sizeof c->in - c->inlen;
    if (rate > 0) {
      if (c->budget < 1) {
        c->throttled = 1;
        flush(c);
        return;
      }
      if (room > c->budget) room = (size_t)c->budget;
    }
    ssize_t r = read(c->fd, c->in + c->inlen, room);
    if (r < 0 && errno == EAGAIN) break;
    if (r <= 0) { drop(c); return; }
    if (rate > 0) c->budget -= (double)r;
    c->inlen += (size_t)r;
    process(c);
    if (c->closing || c->held) break;
  }
  flush(c);
}

/* Apply SIGUSR2 (hold) and SIGHUP (release). */
static void holds(void)
{
  if (hold_on) { hold_on = 0; holding = 1; }
  if (!hold_off) return;
  hold_off = 0;
  holding = 0;
  for (struct conn *c = conns, *next; c; c = next) {
    next = c->next;
    if (!c->held) continue;
    c->held = 0;
    --n_held;
    process(c);
    flush(c);
  }
}

int main(int argc, char **argv)
{
  int opt;
  while ((opt = getopt(argc, argv, "pcr:b:")) != -1) {
    switch (opt) {
      case 'p': pipelining = 1; break;
      case 'c': chunking = 1; break;
      case 'r': rate = atof(optarg); break;
      case 'b': rcvbuf = atoi(optarg); break;
      default:
        fprintf(stderr, "usage: smtp_sink [-p] [-c] [-r BYTES_PER_S] [-b RCVBUF] ADDR PORT\n");
        return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, "usage: smtp_sink [-p] [-c] [-r BYTES_PER_S] [-b RCVBUF] ADDR PORT\n");
    return 2;
  }
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[optind + 1])) };
  if (inet_pton(AF_INET, argv[optind], &sin.sin_addr) != 1) {
    fprintf(stderr, "smtp_sink: bad address %s\n", argv[optind]);
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (rcvbuf) setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0) { perror("smtp_sink: bind"); return 1; }
  if (listen(ls, 4096) < 0) { perror("smtp_sink: listen"); return 1; }
  socklen_t sl = sizeof sin;
  getsockname(ls, (struct sockaddr *)&sin, &sl);

  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  ep = epoll_create1(0);
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  printf("ready %d\n", ntohs(sin.sin_port));
  fflush(stdout);

  /* -r: each connection's budget grows by the rate, ticked every 10 ms. */
  struct timespec last;
  clock_gettime(CLOCK_MONOTONIC, &last);

  struct epoll_event evs[256];
  while (!stop) {
    holds();
    int n = epoll_wait(ep, evs, 256, rate > 0 ? 10 : 500);
    if (report) {
      report = 0;
      if (hold_on || hold_off) {  /* a signal sent before this report comes first */
        holds();
        n = 0;  /* a released connection may be gone: epoll reports the rest again */
      }
      printf("connections %llu messages %llu bytes %llu bursts %llu held %llu\n",
             n_conn, n_msg, n_bytes, n_bursts, n_held);
      fflush(stdout);
    }
    for (int i = 0; i < n; ++i) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          c->dot = 2;
          ++n_conn;
          struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          c->next = conns;
          if (conns) conns->prev = c;
          conns = c;
          c->budget = rate / 100;
          put(c, "220 sink.bench ESMTP\r\n");
          flush(c);
        }
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      else if (evs[i].events & EPOLLOUT) flush(c);
    }
    if (rate > 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      double dt = (double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9;
      if (dt >= 0.01) {
        last = now;
        for (struct conn *c = conns, *next; c; c = next) {
          next = c->next;
          c->budget += rate * dt;
          if (c->budget > rate / 10) c->budget = rate / 10;
          if (c->throttled && c->budget >= 1) { c->throttled = 0; on_readable(c); }
        }
      }
    }
  }
  printf("connections %llu messages %llu bytes %llu bursts %llu held %llu\n",
         n_conn, n_msg, n_bytes, n_bursts, n_held);
  return 0;
}
