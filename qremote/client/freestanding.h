/*
 * The little of a C library that qmail-remote.c uses, for Linux on x86-64, made of
 * system calls: the client built with -DQR_FREESTANDING=1 -nostdlib runs without the
 * C library.
 *
 * Why: the C library's start-up asks the processor about its caches and features with
 * the CPUID instruction, dozens of times; under a hypervisor each CPUID traps to it.
 * On a virtual machine that start-up costs about 0.5 ms of CPU, more than all the rest
 * of a hand-over; qmail starts this program once per delivery. Without the library it
 * starts in a fraction of that (bench/warm_path.py prints both).
 *
 * Only what the client calls is here, with the same names and meanings (errno set,
 * -1 returned), so the client's code is the same in both builds. The types and
 * constants are the kernel's ABI for x86-64.
 */

#ifndef QR_FREESTANDING_H
#define QR_FREESTANDING_H

#if !defined(__x86_64__) || defined(__ILP32__) || !defined(__linux__)
#error "the freestanding client is for Linux on x86-64; build it with the C library"
#endif
/* The stack protector reads its canary from thread-local storage (%fs), which only the
 * C library sets up: without it the first protected function faults. */
#if defined(__SSP__) || defined(__SSP_STRONG__) || defined(__SSP_ALL__) \
    || defined(__SSP_EXPLICIT__)
#error "the freestanding client cannot have the stack protector; build it with the C library"
#endif

typedef unsigned long size_t;
typedef long ssize_t;
typedef int pid_t;
typedef unsigned int uid_t;
typedef unsigned int gid_t;
typedef unsigned int socklen_t;
typedef unsigned short sa_family_t;

#define NULL ((void *)0)

#define EINTR 4
#define ENOMEM 12

#define O_RDONLY 0
#define O_WRONLY 1
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define O_PATH 010000000
#define AT_FDCWD (-100)

#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_CLOEXEC 02000000
#define SOL_SOCKET 1
#define SO_PEERCRED 17
#define SCM_RIGHTS 1
#define MSG_NOSIGNAL 0x4000

#define SIGPIPE 13
#define SIGCHLD 17
#define SIG_DFL ((void (*)(int))0)
#define SIG_IGN ((void (*)(int))1)

#define WIFEXITED(s) (((s) & 0x7f) == 0)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)

#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_mmap 9
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_socket 41
#define NR_connect 42
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_getsockopt 55
#define NR_clone 56
#define NR_execve 59
#define NR_wait4 61
#define NR_chdir 80
#define NR_fchdir 81
#define NR_geteuid 107
#define NR_exit_group 231
#define NR_openat 257
#define NR_dup3 292
#define NR_pipe2 293

struct iovec {
	void *iov_base;
	size_t iov_len;
};

struct msghdr {
	void *msg_name;
	socklen_t msg_namelen;
	struct iovec *msg_iov;
	size_t msg_iovlen;
	void *msg_control;
	size_t msg_controllen;
	int msg_flags;
};

struct cmsghdr {
	size_t cmsg_len;
	int cmsg_level;
	int cmsg_type;
};

#define CMSG_ALIGN(len) (((len) + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1))
#define CMSG_SPACE(len) (CMSG_ALIGN(len) + CMSG_ALIGN(sizeof(struct cmsghdr)))
#define CMSG_LEN(len) (CMSG_ALIGN(sizeof(struct cmsghdr)) + (len))
#define CMSG_DATA(cmsg) ((unsigned char *)(cmsg) + CMSG_ALIGN(sizeof(struct cmsghdr)))
#define CMSG_FIRSTHDR(msg) \
	((msg)->msg_controllen >= sizeof(struct cmsghdr) \
	     ? (struct cmsghdr *)(msg)->msg_control : (struct cmsghdr *)0)

struct sockaddr {
	sa_family_t sa_family;
	char sa_data[14];
};

struct sockaddr_un {
	sa_family_t sun_family;
	char sun_path[108];
};

struct ucred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

static int errno;
static char **environ;

static long qr_syscall(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}

/* A system call's result the C library's way: -1 with errno set on failure. */
static long qr_result(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

#define SYS3(n, a, b, c) qr_result(qr_syscall((n), (long)(a), (long)(b), (long)(c), 0, 0, 0))
#define SYS6(n, a, b, c, d, e, f) \
	qr_result(qr_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

__attribute__((noreturn)) static void _exit(int status)
{
	for (;;)
		qr_syscall(NR_exit_group, status, 0, 0, 0, 0, 0);
}

static ssize_t read(int fd, void *buf, size_t n) { return SYS3(NR_read, fd, buf, n); }
static ssize_t write(int fd, const void *buf, size_t n) { return SYS3(NR_write, fd, buf, n); }
static int close(int fd) { return (int)SYS3(NR_close, fd, 0, 0); }
static int chdir(const char *path) { return (int)SYS3(NR_chdir, path, 0, 0); }
static int fchdir(int fd) { return (int)SYS3(NR_fchdir, fd, 0, 0); }
static uid_t geteuid(void) { return (uid_t)qr_syscall(NR_geteuid, 0, 0, 0, 0, 0, 0); }
static int pipe(int fds[2]) { return (int)SYS3(NR_pipe2, fds, 0, 0); }
static int socket(int domain, int type, int protocol)
{
	return (int)SYS3(NR_socket, domain, type, protocol);
}
static int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)SYS3(NR_connect, fd, addr, len);
}
static ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return SYS3(NR_sendmsg, fd, msg, flags);
}
static ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return SYS6(NR_sendto, fd, buf, n, flags, 0, 0);
}
static int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	return (int)SYS6(NR_getsockopt, fd, level, name, value, len, 0);
}
static int open(const char *path, int flags)
{
	return (int)SYS6(NR_openat, AT_FDCWD, path, flags, 0, 0, 0);
}
static int dup2(int from, int to)
{
	if (from == to)
		return to;
	return (int)SYS3(NR_dup3, from, to, 0);
}
static pid_t fork(void) { return (pid_t)SYS6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0); }
static pid_t waitpid(pid_t pid, int *status, int options)
{
	return (pid_t)SYS6(NR_wait4, pid, status, options, 0, 0, 0);
}
static int execv(const char *path, char *const argv[])
{
	return (int)SYS3(NR_execve, path, argv, environ);
}

/* Only SIG_IGN and SIG_DFL are ever set, which need no restorer. */
static void (*signal(int sig, void (*handler)(int)))(int)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} action = {handler, 0, 0, 0};

	SYS6(NR_rt_sigaction, sig, &action, 0, sizeof action.mask, 0, 0);
	return 0;
}

/* The compiler may call these four for its own copies: they must exist, and the empty
 * asm keeps it from turning their loops back into calls to themselves. */
void *memset(void *dest, int c, size_t n)
{
	unsigned char *d = dest;
	while (n--) {
		__asm__ volatile("");
		*d++ = (unsigned char)c;
	}
	return dest;
}

void *memcpy(void *dest, const void *src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	while (n--) {
		__asm__ volatile("");
		*d++ = *s++;
	}
	return dest;
}

void *memmove(void *dest, const void *src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	if (d < s)
		return memcpy(dest, src, n);
	while (n--) {
		__asm__ volatile("");
		d[n] = s[n];
	}
	return dest;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; --n, ++x, ++y)
		if (*x != *y)
			return *x - *y;
	return 0;
}

static size_t strlen(const char *s)
{
	const char *p = s;
	while (*p)
		++p;
	return (size_t)(p - s);
}

static int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		++a, ++b;
	return (unsigned char)*a - (unsigned char)*b;
}

static int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; --n, ++a, ++b)
		if (*a != *b || !*a)
			return (unsigned char)*a - (unsigned char)*b;
	return 0;
}

static char *strrchr(const char *s, int c)
{
	const char *found = NULL;
	for (;; ++s) {
		if (*s == (char)c)
			found = s;
		if (!*s)
			return (char *)found;
	}
}

/* Memory from mmap, its size kept in front: the client allocates a few blocks. */
#define QR_HEADER 16

static void *malloc(size_t n)
{
	size_t total = (n + QR_HEADER + 4095) & ~(size_t)4095;
	long p = qr_syscall(NR_mmap, 0, (long)total, 3 /* PROT_READ|WRITE */,
	                    0x22 /* MAP_PRIVATE|ANONYMOUS */, -1, 0);

	if (p < 0 && p > -4096) {
		errno = ENOMEM;
		return NULL;
	}
	*(size_t *)p = total;
	return (char *)p + QR_HEADER;
}

static void free(void *ptr)
{
	if (ptr) {
		char *base = (char *)ptr - QR_HEADER;
		qr_syscall(NR_munmap, (long)base, (long)*(size_t *)base, 0, 0, 0, 0);
	}
}

static void *realloc(void *ptr, size_t n)
{
	void *grown = malloc(n);
	if (grown && ptr) {
		size_t old = *(size_t *)((char *)ptr - QR_HEADER) - QR_HEADER;
		memcpy(grown, ptr, old < n ? old : n);
		free(ptr);
	}
	return grown;
}

/* setenv(name, value, 1): a new environment with NAME= where the C library puts it
 * (in place of the first NAME=, else at the end), and no other NAME= entry. */
static int setenv(const char *name, const char *value, int overwrite)
{
	size_t n = 0, i, k = 0, nlen = strlen(name), vlen = strlen(value);
	char **env;
	char *entry;
	int placed = 0;

	(void)overwrite;
	while (environ && environ[n])
		++n;
	env = malloc((n + 2) * sizeof *env);
	entry = malloc(nlen + vlen + 2);
	if (!env || !entry)
		return -1;
	memcpy(entry, name, nlen);
	entry[nlen] = '=';
	memcpy(entry + nlen + 1, value, vlen + 1);
	for (i = 0; i < n; ++i) {
		if (strncmp(environ[i], name, nlen) != 0 || environ[i][nlen] != '=')
			env[k++] = environ[i];
		else if (!placed) {
			env[k++] = entry;
			placed = 1;
		}
	}
	if (!placed)
		env[k++] = entry;
	env[k] = NULL;
	environ = env;
	return 0;
}

int main(int argc, char **argv);

/* Called by _start with the initial stack: argc, argv..., NULL, envp..., NULL. */
__attribute__((used, noreturn)) void qr_start(long *sp);
__attribute__((used, noreturn)) void qr_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	environ = argv + argc + 1;
	_exit(main(argc, argv));
}

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "	xor %rbp, %rbp\n"
        "	mov %rsp, %rdi\n"
        "	and $-16, %rsp\n"
        "	call qr_start\n"
        "	hlt\n");

#endif
