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

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct cshim_udp_batch {
    unsigned count, size, received, replies;
    unsigned char *in, *out;
    struct mmsghdr *rmsgs, *smsgs;
    struct iovec *riov, *siov;
    struct sockaddr_storage *addrs;
};

cshim_udp_batch *cshim_udp_batch_new(unsigned count, unsigned size) {
    cshim_udp_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count; b->size = size;
    b->in = malloc((size_t)count * size);
    b->out = malloc((size_t)count * size);
    b->rmsgs = calloc(count, sizeof *b->rmsgs);
    b->smsgs = calloc(count, sizeof *b->smsgs);
    b->riov = calloc(count, sizeof *b->riov);
    b->siov = calloc(count, sizeof *b->siov);
    b->addrs = calloc(count, sizeof *b->addrs);
    if (!b->in || !b->out || !b->rmsgs || !b->smsgs || !b->riov || !b->siov || !b->addrs) {
        cshim_udp_batch_free(b);
        return NULL;
    }
    return b;
}

void cshim_udp_batch_free(cshim_udp_batch *b) {
    if (!b) return;
    free(b->in); free(b->out); free(b->rmsgs); free(b->smsgs); free(b->riov); free(b->siov); free(b->addrs);
    free(b);
}

int cshim_udp_batch_recv(int fd, cshim_udp_batch *b, int wait) {
    for (unsigned i = 0; i < b->count; i++) {
        b->riov[i].iov_base = b->in + (size_t)i * b->size;
        b->riov[i].iov_len = b->size;
        memset(&b->rmsgs[i].msg_hdr, 0, sizeof b->rmsgs[i].msg_hdr);
        b->rmsgs[i].msg_hdr.msg_iov = &b->riov[i];
        b->rmsgs[i].msg_hdr.msg_iovlen = 1;
        b->rmsgs[i].msg_hdr.msg_name = &b->addrs[i];
        b->rmsgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
    }
    b->received = 0;
    b->replies = 0;
    int n = recvmmsg(fd, b->rmsgs, b->count, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    if (n > 0) b->received = (unsigned)n;
    return n;
}

const unsigned char *cshim_udp_batch_data(const cshim_udp_batch *b, unsigned i, unsigned *len) {
    if (i >= b->received) { *len = 0; return NULL; }
    unsigned l = b->rmsgs[i].msg_len;
    /* A datagram larger than the buffer was cut: report it as such (len > size). */
    if (b->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) l = b->size + 1;
    *len = l;
    return b->in + (size_t)i * b->size;
}

int cshim_udp_batch_source(const cshim_udp_batch *b, unsigned i, unsigned char *addr, unsigned short *port) {
    const struct sockaddr_storage *s = &b->addrs[i];
    if (s->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)s;
        memcpy(addr, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
        return AF_INET;
    }
    if (s->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)s;
        memcpy(addr, &a->sin6_addr, 16);
        *port = ntohs(a->sin6_port);
        return AF_INET6;
    }
    return -1;
}

void cshim_udp_batch_reply(cshim_udp_batch *b, unsigned i, const unsigned char *data, unsigned len) {
    if (i >= b->received || len > b->size || b->replies >= b->count) return;
    unsigned k = b->replies++;
    unsigned char *dst = b->out + (size_t)k * b->size;
    memcpy(dst, data, len);
    b->siov[k].iov_base = dst;
    b->siov[k].iov_len = len;
    memset(&b->smsgs[k].msg_hdr, 0, sizeof b->smsgs[k].msg_hdr);
    b->smsgs[k].msg_hdr.msg_iov = &b->siov[k];
    b->smsgs[k].msg_hdr.msg_iovlen = 1;
    b->smsgs[k].msg_hdr.msg_name = &b->addrs[i];
    b->smsgs[k].msg_hdr.msg_namelen = b->rmsgs[i].msg_hdr.msg_namelen;
}

int cshim_udp_batch_send(int fd, cshim_udp_batch *b) {
    unsigned sent = 0;
    while (sent < b->replies) {
        int n = sendmmsg(fd, b->smsgs + sent, b->replies - sent, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* Skip a datagram the kernel refuses (e.g. an unreachable sender). */
            sent++;
            continue;
        }
        sent += (unsigned)n;
    }
    b->replies = 0;
    return (int)sent;
}

int cshim_udp_sendto(int fd, const unsigned char *data, unsigned len, int family, const unsigned char *addr, unsigned short port) {
    if (family == AF_INET) {
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        memcpy(&a.sin_addr, addr, 4);
        return (int)sendto(fd, data, len, 0, (struct sockaddr *)&a, sizeof a);
    }
    struct sockaddr_in6 a = {0};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    memcpy(&a.sin6_addr, addr, 16);
    return (int)sendto(fd, data, len, 0, (struct sockaddr *)&a, sizeof a);
}
