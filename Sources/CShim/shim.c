#define _GNU_SOURCE
#include "cshim.h"
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <libmnl/libmnl.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <linux/nsfs.h>

extern char **environ;

int cshim_setns(int fd, int nstype) { return setns(fd, nstype); }
int cshim_unshare_netns(void) { return unshare(CLONE_NEWNET); }
int cshim_clone_newnet(void) { return CLONE_NEWNET; }
pid_t cshim_gettid(void) { return (pid_t)syscall(SYS_gettid); }
size_t cshim_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }
char **cshim_environ(void) { return environ; }
unsigned long cshim_nsfs_magic(void) { return NSFS_MAGIC; }
unsigned long cshim_proc_magic(void) { return PROC_SUPER_MAGIC; }
int cshim_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cshim_ns_get_nstype(int fd) { return ioctl(fd, NS_GET_NSTYPE); }

int cshim_make_shared_mount(const char *path) {
    if (mount("", path, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
    if (errno != EINVAL) return -1;
    if (mount(path, path, "none", MS_BIND | MS_REC, NULL) != 0) return -1;
    return mount("", path, "none", MS_SHARED | MS_REC, NULL);
}

int cshim_bind_mount(const char *src, const char *dst) {
    return mount(src, dst, "none", MS_BIND, NULL);
}

int cshim_umount_detach(const char *path) { return umount2(path, MNT_DETACH); }

int cshim_unshare_netns_and_mount(const char *path) {
    if (unshare(CLONE_NEWNET) != 0) return -1;
    char self[64];
    snprintf(self, sizeof self, "/proc/self/task/%d/ns/net", (int)syscall(SYS_gettid));
    return mount(self, path, "none", MS_BIND, NULL);
}
unsigned long cshim_fstatfs_type(int fd) { struct statfs s; if (fstatfs(fd, &s) != 0) return 0; return (unsigned long)s.f_type; }
