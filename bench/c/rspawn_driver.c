/* rspawn_driver CONCURRENCY COUNT MESSAGE_FILE CMD [ARG...]: run COUNT deliveries,
 * CONCURRENCY at a time, the way qmail-rspawn runs qmail-remote (spawn.c).
 *
 * Each delivery is a new process CMD ARG... with stdin the message file opened anew
 * (a regular file, as the queue file is), stdout the write end of a pipe and stderr
 * the same pipe. The driver keeps its copy of the write end until the child is
 * reaped, so the end of file on the pipe comes after the exit, as in spawn.c; the
 * delivery is over at that end of file and the next one starts.
 *
 * One line per delivery on stdout, tab-separated:
 *   D index pid wall_us exit_us utime_us stime_us maxrss_kb status letter report
 * where exit_us is when the child was reaped (a client that hands its delivery over
 * exits long before the end of file), letter the first of K/Z/D among the
 * NUL-terminated reports (or "-"), and report the whole output with NUL as '|' and
 * newlines as '\\n'. Then
 *   T wall_us driver_utime_us driver_stime_us driver_maxrss_kb
 * Children are reaped with wait4, so each one's own CPU and peak RSS are exact.
 * vfork keeps the driver's own memory out of the child's peak RSS as far as the
 * kernel allows (the pre-exec image counts towards ru_maxrss).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct slot {
  int used, index, pid, rfd, wfd, reaped, status;
  struct rusage ru;
  int64_t start, exited;
  char *out;
  size_t len, cap;
};

static int64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long us(struct timeval tv) { return tv.tv_sec * 1000000L + tv.tv_usec; }

static void die(const char *what) { perror(what); exit(1); }

static void spawn(struct slot *s, int index, const char *message, char **argv)
{
  int fdmess = open(message, O_RDONLY | O_CLOEXEC);
  if (fdmess < 0) die("rspawn_driver: open message");
  int pi[2];
  if (pipe2(pi, O_CLOEXEC) < 0) die("rspawn_driver: pipe");
  sigset_t none;
  sigemptyset(&none);
  s->start = now_us();
  int pid = vfork();
  if (pid < 0) die("rspawn_driver: vfork");
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(fdmess, 0) < 0 || dup2(pi[1], 1) < 0 || dup2(1, 2) < 0) _exit(111);
    execvp(argv[0], argv);
    _exit(errno == ENOENT ? 100 : 111);
  }
  close(fdmess);
  *s = (struct slot){ .used = 1, .index = index, .pid = pid, .rfd = pi[0], .wfd = pi[1],
                      .start = s->start, .out = s->out, .cap = s->cap };
}

static void finish(struct slot *s)
{
  char letter = '-';
  size_t j = 0;
  for (size_t k = 0; k < s->len; ++k)
    if (!s->out[k]) {
      char c = s->out[j];
      if (c == 'K' || c == 'Z' || c == 'D') { letter = c; break; }
      j = k + 1;
    }
  printf("D\t%d\t%d\t%lld\t%lld\t%ld\t%ld\t%ld\t%d\t%c\t", s->index, s->pid,
         (long long)(now_us() - s->start), (long long)(s->exited - s->start),
         us(s->ru.ru_utime), us(s->ru.ru_stime),
         s->ru.ru_maxrss, s->status, letter);
  for (size_t k = 0; k < s->len; ++k) {
    char c = s->out[k];
    if (c == 0) fputc('|', stdout);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c == '\t' || c == '\r') fputc(' ', stdout);
    else fputc(c, stdout);
  }
  fputc('\n', stdout);
  close(s->rfd);
  s->used = 0;
  s->len = 0;
}

int main(int argc, char **argv)
{
  if (argc < 5) {
    fprintf(stderr, "usage: rspawn_driver CONCURRENCY COUNT MESSAGE_FILE CMD [ARG...]\n");
    return 2;
  }
  int conc = atoi(argv[1]), total = atoi(argv[2]);
  const char *message = argv[3];
  char **cmd = argv + 4;
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  struct pollfd *pfd = calloc((size_t)conc + 1, sizeof *pfd);
  int *map = calloc((size_t)conc + 1, sizeof *map);

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("rspawn_driver: signalfd");

  int64_t t0 = now_us();
  int started = 0, done = 0;
  for (int i = 0; i < conc && started < total; ++i) spawn(&slots[i], started++, message, cmd);

  while (done < total) {
    int n = 0;
    pfd[n] = (struct pollfd){ sfd, POLLIN, 0 };
    map[n++] = -1;
    for (int i = 0; i < conc; ++i)
      if (slots[i].used) { pfd[n] = (struct pollfd){ slots[i].rfd, POLLIN, 0 }; map[n++] = i; }
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("rspawn_driver: poll");
    }
    if (pfd[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      int status, pid;
      struct rusage ru;
      while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0)
        for (int i = 0; i < conc; ++i)
          if (slots[i].used && slots[i].pid == pid && !slots[i].reaped) {
            slots[i].reaped = 1;
            slots[i].exited = now_us();
            slots[i].status = status;
            slots[i].ru = ru;
            close(slots[i].wfd);
            break;
          }
    }
    for (int k = 1; k < n; ++k) {
      if (!pfd[k].revents) continue;
      struct slot *s = &slots[map[k]];
      if (s->len + 512 > s->cap) {
        s->cap = s->cap * 2 + 512;
        s->out = realloc(s->out, s->cap);
        if (!s->out) die("rspawn_driver: realloc");
      }
      ssize_t r = read(s->rfd, s->out + s->len, s->cap - s->len);
      if (r > 0) { s->len += (size_t)r; continue; }
      if (r < 0 && errno == EINTR) continue;
      /* End of file: only possible once the child is reaped (we hold the write end). */
      finish(s);
      ++done;
      if (started < total) spawn(s, started++, message, cmd);
    }
  }
  struct rusage self;
  getrusage(RUSAGE_SELF, &self);
  printf("T\t%lld\t%ld\t%ld\t%ld\n", (long long)(now_us() - t0), us(self.ru_utime),
         us(self.ru_stime), self.ru_maxrss);
  return 0;
}
