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

/* Batched UDP for the DNS server: recvmmsg/sendmmsg (GNU-only declarations) over a batch of
   `count` datagrams of up to `size` bytes each. A reply set for datagram i goes back to
   datagram i's sender. */
typedef struct cshim_udp_batch cshim_udp_batch;
cshim_udp_batch *cshim_udp_batch_new(unsigned count, unsigned size);
void cshim_udp_batch_free(cshim_udp_batch *b);
/* Receives up to `count` datagrams: with `wait`, blocks until at least one arrives (then
   takes what is queued). Returns how many, or -1 with errno. Clears earlier replies. */
int cshim_udp_batch_recv(int fd, cshim_udp_batch *b, int wait);
const unsigned char *cshim_udp_batch_data(const cshim_udp_batch *b, unsigned i, unsigned *len);
/* The sender of datagram i: family (AF_INET/AF_INET6), 4 or 16 address bytes into addr, port. */
int cshim_udp_batch_source(const cshim_udp_batch *b, unsigned i, unsigned char *addr, unsigned short *port);
/* Copies a reply to datagram i (at most `size` bytes; longer ones are not sent). */
void cshim_udp_batch_reply(cshim_udp_batch *b, unsigned i, const unsigned char *data, unsigned len);
/* Sends every reply set since the last receive. Returns how many were sent. */
int cshim_udp_batch_send(int fd, cshim_udp_batch *b);
/* A single datagram to the sender of an earlier datagram's address (for late replies). */
int cshim_udp_sendto(int fd, const unsigned char *data, unsigned len, int family, const unsigned char *addr, unsigned short port);
