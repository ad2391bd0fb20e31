#define _GNU_SOURCE
/*
 * qmail-remote HOST SENDER RECIP...: qremote's compiled client.
 *
 * qmail-rspawn runs this program once per delivery: stdin is the queue file, stdout
 * a pipe it reads to EOF, stderr the same pipe. It hands the delivery to
 * `qremote worker` over a unix socket, passing its stdin and stdout (SCM_RIGHTS),
 * and exits 0 once the worker has acknowledged; the worker writes the reports into
 * qmail-rspawn's pipe and closes it. When no worker takes the delivery (no socket,
 * connection refused, connection closed before the acknowledgement) the program
 * runs the in-process qmail-remote instead: PYTHON -I -m qremote.remote ARGS, with
 * QMAIL_HOME set and stderr on /dev/null, exactly as the shell wrapper does, so a
 * message is never lost. It waits for the acknowledgement without a timeout: giving
 * up and delivering anyway could deliver twice.
 *
 * The protocol is described in qremote/worker/protocol.py.
 *
 * Relay mode (-DQR_RELAY=1, for measurement): the worker gets a pipe instead of
 * stdout; this program stays, copies complete reports from the pipe to stdout and,
 * when the pipe ends without a complete K, Z or D report, adds a Z report of its own.
 *
 * This program writes nothing to stdout or stderr (stderr IS stdout under
 * qmail-rspawn) except, in relay mode, the copy and that final Z. Exit status: 0, or
 * 111 (qmail-rspawn: temporary failure) when even the fallback cannot run.
 *
 * Build (qremote.client.build.build_client does it):
 *   cc -O2 -DQR_HOME='"/var/qmail"' -DQR_PYTHON='"/opt/qremote/bin/python"' \
 *      -DQR_SOCKET='"/var/qmail/queue/lock/qremote.sock"' [-DQR_RELAY=1] \
 *      -o qmail-remote qmail-remote.c
 * On Linux x86-64 it is built first without the C library (freestanding.h):
 *   cc -O2 -static -nostdlib -ffreestanding -fno-stack-protector -DQR_FREESTANDING=1 ...
 */

#if QR_FREESTANDING
#include "freestanding.h" /* no C library: see there why */
#else
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#ifndef QR_HOME
#error "define QR_HOME, the qmail home, as a C string"
#endif
#ifndef QR_PYTHON
#error "define QR_PYTHON, the Python interpreter of qremote, as a C string"
#endif
#ifndef QR_SOCKET
#error "define QR_SOCKET, the worker's socket, as a C string"
#endif
#ifndef QR_RELAY
#define QR_RELAY 0
#endif

#define PROTOCOL_VERSION 1
#define KIND_DELIVER 'D'
#define ACK 'A'
#define MAX_ARGS 0xFFFF
#define MAX_REQUEST (1 << 20)
#define MAX_RELAYED (1 << 20)

#ifndef O_PATH
#define O_PATH O_RDONLY
#endif
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif

/* Lets an installer recognise this program (qremote.client.build.CLIENT_MARKER). */
const char qremote_client_marker[] = "qremote-client: hands deliveries to qremote worker";

static const char vanished[] =
    "Zqremote worker vanished before it finished the delivery; it will be "
    "tried again. (#4.3.0)\nroute=- local=- remote=- tls=none auth=none";

/* Connect to the worker; -1 when nobody listens. A long path is reached from its
 * directory (sun_path holds 108 bytes), the working directory restored after. */
static int connect_worker(void)
{
	const char *path = QR_SOCKET;
	const char *name = path;
	struct sockaddr_un addr;
	int fd, r, saved = -1;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (fd < 2) { /* stdin or stdout closed: the socket would travel as the message
	                 or the report (the worker would send its own ack as the message) */
		close(fd);
		return -1;
	}
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr.sun_path) {
		const char *slash = strrchr(path, '/');
		size_t len;
		char *dir;

		if (!slash || slash == path)
			goto fail;
		len = (size_t)(slash - path);
		dir = malloc(len + 1);
		if (!dir)
			goto fail;
		memcpy(dir, path, len);
		dir[len] = '\0';
		saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		r = chdir(dir);
		free(dir);
		if (r == -1)
			goto fail;
		name = slash + 1;
	}
	if (strlen(name) >= sizeof addr.sun_path)
		goto fail;
	memcpy(addr.sun_path, name, strlen(name) + 1);
	do
		r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
	while (r == -1 && errno == EINTR);
	if (saved != -1) {
		if (fchdir(saved) == -1) { /* nothing depends on the cwd from here */ }
		close(saved);
	}
	if (r == -1) {
		close(fd);
		return -1;
	}
	{
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1
		    || (cred.uid != 0 && cred.uid != geteuid())) {
			close(fd);
			return -1;
		}
	}
	return fd;
fail:
	if (saved != -1)
		close(saved);
	close(fd);
	return -1;
}

static void put32(unsigned char *p, unsigned long v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The request for argv[1..argc-1]; NULL when it cannot travel (too large). */
static unsigned char *build_request(int argc, char **argv, size_t *size)
{
	size_t n = (size_t)(argc - 1), total, i;
	unsigned char *buf, *p;

	if (n > MAX_ARGS)
		return NULL;
	total = 4 + 4 * n;
	for (i = 0; i < n; ++i) {
		total += strlen(argv[i + 1]);
		if (total > MAX_REQUEST)
			return NULL;
	}
	buf = malloc(total);
	if (!buf)
		return NULL;
	buf[0] = PROTOCOL_VERSION;
	buf[1] = KIND_DELIVER;
	buf[2] = (unsigned char)(n >> 8);
	buf[3] = (unsigned char)n;
	p = buf + 4 + 4 * n;
	for (i = 0; i < n; ++i) {
		size_t len = strlen(argv[i + 1]);
		put32(buf + 4 + 4 * i, (unsigned long)len);
		memcpy(p, argv[i + 1], len);
		p += len;
	}
	*size = total;
	return buf;
}

/* Send the request with the message fd and the report fd; 0 on success. */
static int send_request(int sock, const unsigned char *buf, size_t size, int message_fd,
                        int report_fd)
{
	int fds[2];
	union {
		char space[CMSG_SPACE(sizeof fds)];
		struct cmsghdr align;
	} control;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	struct iovec iov;
	ssize_t r;

	fds[0] = message_fd;
	fds[1] = report_fd;
	memset(&msg, 0, sizeof msg);
	memset(&control, 0, sizeof control);
	iov.iov_base = (void *)buf;
	iov.iov_len = size;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.space;
	msg.msg_controllen = sizeof control.space;
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
	do
		r = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -1;
	while ((size_t)r < size) {
		ssize_t w = send(sock, buf + r, size - (size_t)r, MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		r += w;
	}
	return 0;
}

/* 1 when the worker acknowledged, 0 when it closed or failed first. No timeout. */
static int acknowledged(int sock)
{
	char c;
	ssize_t r;

	do
		r = read(sock, &c, 1);
	while (r == -1 && errno == EINTR);
	return r == 1 && c == ACK;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Relay mode: copy each complete report (up to its NUL) from fd to stdout, stop after
 * the K, Z or D report; at EOF without one, drop any incomplete report and add Z. */
static void relay(int fd)
{
	char chunk[4096];
	char *record = NULL;
	size_t len = 0, cap = 0;
	int done = 0, overflow = 0;

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		ssize_t i;

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (i = 0; i < r; ++i) {
			if (done)
				break;
			if (len == cap && !overflow) {
				size_t more = cap ? 2 * cap : 4096;
				char *grown = more <= MAX_RELAYED ? realloc(record, more) : NULL;
				if (!grown)
					overflow = 1;
				else {
					record = grown;
					cap = more;
				}
			}
			if (overflow) { /* a report this long is not one: skip to its NUL */
				if (chunk[i] == '\0') {
					overflow = 0;
					len = 0;
				}
				continue;
			}
			record[len++] = chunk[i];
			if (chunk[i] != '\0')
				continue;
			write_all(1, record, len);
			if (record[0] == 'K' || record[0] == 'Z' || record[0] == 'D')
				done = 1;
			len = 0;
		}
	}
	if (!done)
		write_all(1, vanished, sizeof vanished); /* with its terminating NUL */
	_exit(0);
}

/* Deliver in-process: PYTHON -I -m qremote.remote ARGS 2>/dev/null || exit 111. */
static void fallback(int argc, char **argv)
{
	char **args;
	pid_t pid;
	int status, i;

	args = malloc((size_t)(argc + 4) * sizeof *args);
	if (!args)
		_exit(111);
	args[0] = (char *)QR_PYTHON;
	args[1] = (char *)"-I";
	args[2] = (char *)"-m";
	args[3] = (char *)"qremote.remote";
	for (i = 1; i < argc; ++i)
		args[i + 3] = argv[i];
	args[argc + 3] = NULL;
	if (setenv("QMAIL_HOME", QR_HOME, 1) == -1)
		_exit(111);
	signal(SIGCHLD, SIG_DFL); /* inherited SIG_IGN: waitpid would fail, K becomes Z */
	pid = fork();
	if (pid == -1)
		_exit(111);
	if (pid == 0) {
		/* without O_CLOEXEC: when fd 2 was closed, open returns 2 itself */
		int null = open("/dev/null", O_WRONLY);
		if (null == -1 || dup2(null, 2) == -1)
			_exit(111);
		if (null != 2)
			close(null);
		execv(QR_PYTHON, args);
		_exit(111);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			_exit(111);
	_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 111);
}

int main(int argc, char **argv)
{
	unsigned char *request;
	size_t size;
	int sock, report_fd = 1;
	int pipefd[2] = {-1, -1};

	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
		fallback(argc, argv); /* install's test of this very program, never the worker */
	request = build_request(argc, argv, &size);
	sock = request ? connect_worker() : -1;
	if (sock != -1 && QR_RELAY) {
		if (pipe(pipefd) == -1) {
			close(sock);
			sock = -1;
		} else
			report_fd = pipefd[1];
	}
	if (sock != -1) {
		int sent = send_request(sock, request, size, 0, report_fd) == 0;
		if (QR_RELAY)
			close(pipefd[1]); /* the worker has its own copy now */
		if (sent && acknowledged(sock)) {
			if (!QR_RELAY)
				_exit(0);
			close(sock);
			relay(pipefd[0]);
		}
		close(sock);
		if (QR_RELAY)
			close(pipefd[0]);
	}
	free(request);
	fallback(argc, argv);
	return 111;
}
