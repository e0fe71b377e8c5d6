/*
 * host: the plugin host of the trace tests (pkg/image/trace_test.go).
 *
 * Loads the plugin named by the PLUGIN environment variable with dlopen(3),
 * a file no static rule can find, prints what its hello() returns, then, when
 * CHILD names a program, runs it in a child process (fork + exec) with the
 * same stdin, so a trace must follow children to see it. With ESCAPE set it
 * first tries chroot(ESCAPE), which the trace sandbox must not allow.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	const char *escape = getenv("ESCAPE");
	if (escape != NULL && chroot(escape) == 0) {
		printf("escaped\n");
	}
	const char *plugin = getenv("PLUGIN");
	if (plugin == NULL) {
		fprintf(stderr, "host: PLUGIN is not set\n");
		return 2;
	}
	void *h = dlopen(plugin, RTLD_NOW);
	if (h == NULL) {
		fprintf(stderr, "host: %s\n", dlerror());
		return 3;
	}
	const char *(*hello)(double) = (const char *(*)(double))dlsym(h, "hello");
	if (hello == NULL) {
		fprintf(stderr, "host: %s\n", dlerror());
		return 3;
	}
	printf("%s\n", hello(16.0));
	fflush(stdout);

	const char *child = getenv("CHILD");
	if (child != NULL) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("host: fork");
			return 4;
		}
		if (pid == 0) {
			execl(child, child, (char *)NULL);
			perror("host: exec");
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "host: %s failed\n", child);
			return 4;
		}
	}
	return 0;
}
