/*
 * probe: reports what a program in the trace sandbox may do, for
 * TestTraceSandboxProbe (pkg/image/trace_escape_test.go). Prints one
 * "name=value" line per check on stderr (the trace keeps
 * stderr's tail):
 *
 *   nnp        prctl(PR_GET_NO_NEW_PRIVS)
 *   seccomp    prctl(PR_GET_SECCOMP): 2 under a filter
 *   cap_eff, cap_prm, cap_inh   capget(2), in hex
 *   cap_bnd    how many capabilities the bounding set still has
 *   fds        the open descriptors below 1024, comma-separated
 *   pdeathsig  prctl(PR_GET_PDEATHSIG)
 *   clone_untraced, clone_newuser, clone3, keyctl, bpf
 *              "ok" when the call succeeded, else the errno's name
 *
 * Then it sleeps argv[1] seconds (if given), for the test to look at it
 * from the host. With argv[1] "int80" it makes instead an i386 syscall
 * (int $0x80, getpid) from this x86_64 program, and exits 0 if it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(long r)
{
	if (r >= 0) {
		return "ok";
	}
	switch (errno) {
	case EPERM:
		return "EPERM";
	case ENOSYS:
		return "ENOSYS";
	case EINVAL:
		return "EINVAL";
	case EACCES:
		return "EACCES";
	}
	return strerror(errno);
}

/* tryClone runs clone(flags) and reaps a child made by it. */
static const char *tryClone(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		_exit(0);
	}
	const char *r = result(pid);
	if (pid > 0) {
		waitpid(pid, NULL, 0);
	}
	return r;
}

int main(int argc, char **argv)
{
	fprintf(stderr, "nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	fprintf(stderr, "seccomp=%d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {0};
	if (syscall(SYS_capget, &hdr, data) == 0) {
		fprintf(stderr, "cap_eff=%x%08x\ncap_prm=%x%08x\ncap_inh=%x%08x\n",
			data[1].effective, data[0].effective, data[1].permitted, data[0].permitted,
			data[1].inheritable, data[0].inheritable);
	}
	int bnd = 0;
	for (int c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) {
			bnd++;
		}
	}
	fprintf(stderr, "cap_bnd=%d\n", bnd);
	fprintf(stderr, "fds=");
	for (int fd = 0, n = 0; fd < 1024; fd++) {
		if (fcntl(fd, F_GETFD) >= 0) {
			fprintf(stderr, n++ ? ",%d" : "%d", fd);
		}
	}
	fprintf(stderr, "\n");
	int sig = 0;
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	fprintf(stderr, "pdeathsig=%d\n", sig);
	fprintf(stderr, "clone_untraced=%s\n", tryClone(CLONE_UNTRACED));
	fprintf(stderr, "clone_newuser=%s\n", tryClone(CLONE_NEWUSER));
	/* struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, ... */
	unsigned long long args[11] = {0};
	args[4] = SIGCHLD;
	long pid = syscall(SYS_clone3, args, sizeof(args));
	if (pid == 0) {
		_exit(0);
	}
	fprintf(stderr, "clone3=%s\n", result(pid));
	if (pid > 0) {
		waitpid(pid, NULL, 0);
	}
	fprintf(stderr, "keyctl=%s\n", result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0)));
	fprintf(stderr, "bpf=%s\n", result(syscall(SYS_bpf, 0, NULL, 0)));
	if (argc > 1 && strcmp(argv[1], "int80") == 0) {
#ifdef __x86_64__
		long ret;
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
		fprintf(stderr, "int80=%ld\n", ret);
		return 0;
#else
		return 3;
#endif
	}
	if (argc > 1) {
		sleep(atoi(argv[1]));
	}
	return 0;
}
