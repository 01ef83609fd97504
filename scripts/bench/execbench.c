// execbench: runs one command the way a CNI runtime runs a plugin (environment, a file on
// stdin, stdout captured) and prints the wall time of each run in microseconds.
//
//   execbench -i STDIN_FILE [-e KEY=VALUE]... [-o OUTFILE] -- /path/to/plugin
//
// One run per invocation keeps the harness out of the measured process's way; the
// benchmark driver calls it once per sample. Exit status: the plugin's.
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    const char *in = NULL, *out = "/dev/null";
    char *envs[256];
    int ne = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { i++; break; }
        if (!strcmp(argv[i], "-i") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "-e") && i + 1 < argc && ne < 250) envs[ne++] = argv[++i];
        else { fprintf(stderr, "usage: execbench -i FILE [-e K=V]... [-o OUT] -- cmd...\n"); return 2; }
    }
    if (i >= argc) { fprintf(stderr, "execbench: no command\n"); return 2; }
    // Environment: PATH plus the given variables.
    char *env[260];
    int k = 0;
    for (char **e = environ; *e && k < 4; e++)
        if (!strncmp(*e, "PATH=", 5)) env[k++] = *e;
    for (int j = 0; j < ne; j++) env[k++] = envs[j];
    env[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in) posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid;
    if (posix_spawn(&pid, argv[i], &fa, NULL, &argv[i], env) != 0) { perror("spawn"); return 2; }
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long us = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
    printf("%ld\n", us);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
