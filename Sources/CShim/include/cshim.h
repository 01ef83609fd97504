#ifndef SWIFTCNI_CSHIM_H
#define SWIFTCNI_CSHIM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// setns(2); needs _GNU_SOURCE, so it lives here. Only ever called on a dedicated thread.
int cshim_setns(int fd, int nstype);
/// unshare(CLONE_NEWNET) for the calling thread.
int cshim_unshare_netns(void);
/// The CLONE_NEWNET constant.
int cshim_clone_newnet(void);
/// pipe2(fds, O_CLOEXEC).
int cshim_pipe_cloexec(int fds[2]);
/// gettid(2).
pid_t cshim_gettid(void);
/// MNL_SOCKET_BUFFER_SIZE (a function-like macro in libmnl.h).
size_t cshim_mnl_socket_buffer_size(void);
/// The environment block (environ).
char **cshim_environ(void);
/// Filesystem magic numbers used to recognise a network namespace file.
unsigned long cshim_nsfs_magic(void);
unsigned long cshim_proc_magic(void);
/// fstatfs(fd).f_type, or 0 on error (errno set).
unsigned long cshim_fstatfs_type(int fd);

/// ioctl(fd, NS_GET_NSTYPE): the namespace type of a namespace file (CLONE_NEWNET for netns), or -1.
int cshim_ns_get_nstype(int fd);
/// Make `path` a shared mount point (bind-mounting it onto itself first if needed), as iproute2 does for /run/netns.
int cshim_make_shared_mount(const char *path);
/// Bind-mount `src` onto `dst`.
int cshim_bind_mount(const char *src, const char *dst);
/// umount2(path, MNT_DETACH).
int cshim_umount_detach(const char *path);
/// Create a new network namespace on the calling thread and bind-mount it on `path`
/// (an existing empty file). The calling thread must be a dedicated, short-lived one.
int cshim_unshare_netns_and_mount(const char *path);

#endif
