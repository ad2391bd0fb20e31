/* rtt_delayer QUEUE DELAY_MS: hold every packet of NFQUEUE QUEUE for DELAY_MS, then
 * accept it, in arrival order.
 *
 * A network namespace whose loopback output goes through
 *   iptables -A OUTPUT -o lo -p tcp -j NFQUEUE --queue-num QUEUE
 * then has a true round trip of twice DELAY_MS (each packet crosses OUTPUT once),
 * without netem. Only the packet id and the arrival time are kept (COPY_META: no
 * payload is copied to user space). Every packet waits the same time, so releasing
 * the oldest first keeps the order, and one batch verdict accepts every packet up to
 * the newest one due.
 *
 * Prints "ready" on stdout once bound; on SIGTERM/SIGINT prints counters and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct held { uint32_t id; int64_t due; };

static struct held *ring;
static size_t cap = 1 << 16, head, count;
static int64_t delay_ns;
static unsigned long long seen, released, overruns;
static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void grow(void)
{
  struct held *bigger = malloc(2 * cap * sizeof *bigger);
  if (!bigger) { perror("rtt_delayer: malloc"); exit(1); }
  for (size_t i = 0; i < count; ++i) bigger[i] = ring[(head + i) % cap];
  free(ring);
  ring = bigger; head = 0; cap *= 2;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data)
{
  (void)qh; (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  if (count == cap) grow();
  ring[(head + count) % cap] = (struct held){ ntohl(ph->packet_id), now_ns() + delay_ns };
  ++count; ++seen;
  return 0;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
  if (argc != 3) { fprintf(stderr, "usage: rtt_delayer QUEUE DELAY_MS\n"); return 2; }
  int queue = atoi(argv[1]);
  delay_ns = (int64_t)(atof(argv[2]) * 1e6);
  ring = malloc(cap * sizeof *ring);

  struct nfq_handle *h = nfq_open();
  if (!h) { perror("rtt_delayer: nfq_open"); return 1; }
  struct nfq_q_handle *qh = nfq_create_queue(h, queue, on_packet, NULL);
  if (!qh) { perror("rtt_delayer: nfq_create_queue (is another delayer bound?)"); return 1; }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("rtt_delayer: nfq_set_mode"); return 1; }
  nfq_set_queue_maxlen(qh, 1 << 20);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 64 << 20);
  int fd = nfq_fd(h);

  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("ready\n");
  fflush(stdout);

  char buf[65536];
  while (!stop) {
    int timeout = -1;
    if (count) {
      int64_t wait = ring[head].due - now_ns();
      timeout = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
    }
    /* poll's millisecond resolution would round every hold up: sleep the last
       millisecond precisely instead. */
    if (timeout > 1) {
      struct pollfd p = { fd, POLLIN, 0 };
      poll(&p, 1, timeout - 1);
    } else if (timeout == 1) {
      int64_t wait = ring[head].due - now_ns();
      if (wait > 0) {
        struct timespec ts = { 0, wait };
        struct pollfd p = { fd, POLLIN, 0 };
        ppoll(&p, 1, &ts, NULL);
      }
    } else if (timeout == -1) {
      struct pollfd p = { fd, POLLIN, 0 };
      poll(&p, 1, 200);
    }
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) { nfq_handle_packet(h, buf, (int)n); continue; }
      if (n < 0 && errno == ENOBUFS) { ++overruns; continue; }
      break;
    }
    int64_t t = now_ns();
    uint32_t last = 0;
    size_t due = 0;
    while (count && ring[head].due <= t) {
      last = ring[head].id;
      head = (head + 1) % cap; --count; ++due;
    }
    if (due) {
      nfq_set_verdict_batch(qh, last, NF_ACCEPT);
      released += due;
    }
  }
  /* Accept whatever is still held so no connection is left hanging. */
  if (count) nfq_set_verdict_batch(qh, ring[(head + count - 1) % cap].id, NF_ACCEPT);
  printf("packets %llu released %llu overruns %llu\n", seen, released + count, overruns);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
