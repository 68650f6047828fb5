/*
 * bindguard: LD_PRELOADed into every container process the process kubelet starts.
 *
 * Runner pods share the host's network namespace, each with its own 127.x pod IP. On a real
 * kubelet a pod has its own netns, so a wildcard bind there only means the pod IP; here it
 * would listen on every address of the host and collide with other pods. This library
 * emulates the pod's netns for bind():
 *
 *   AF_INET  0.0.0.0:P              -> POD_IP:P
 *   AF_INET6 [::]:P (or ::ffff:0.0.0.0) -> [::ffff:POD_IP]:P, IPV6_V6ONLY cleared so IPv4
 *            clients reach it (a v4-mapped bind fails on a v6-only socket). When that port is
 *            already taken by the process's own IPv4 socket (the "0.0.0.0:P plus [::]:P
 *            ipv6only" pattern), the v6-only socket gets [::1] on an ephemeral port instead:
 *            in an IPv4-only pod nobody outside could have reached it anyway.
 *   listen() on a socket that was never bound (the kernel would pick 0.0.0.0:ephemeral)
 *            binds it to POD_IP:0 first.
 *
 * Everything else (specific addresses, AF_UNIX, AF_NETLINK, ...) passes through unchanged.
 * The pod IP comes from FLEET_BIND_ADDRESS, read once when the library loads; without it (or
 * when it is not an IPv4 address) the library changes nothing.
 *
 * Not covered: programs that make the bind system call themselves (Go's net package,
 * statically linked binaries).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*listen_fn)(int, int);

static bind_fn real_bind;
static listen_fn real_listen;
static struct in_addr pod_ip;
static int have_pod_ip;

__attribute__((constructor)) static void bindguard_init(void) {
    real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    real_listen = (listen_fn)dlsym(RTLD_NEXT, "listen");
    const char *s = getenv("FLEET_BIND_ADDRESS");
    have_pod_ip = s != NULL && inet_pton(AF_INET, s, &pod_ip) == 1;
}

static int call_bind(int fd, const struct sockaddr *addr, socklen_t len) {
    if (real_bind == NULL) {
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
        if (real_bind == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    return real_bind(fd, addr, len);
}

static int is_v6_wildcard(const struct in6_addr *a) {
    static const unsigned char mapped_any[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return IN6_IS_ADDR_UNSPECIFIED(a) || memcmp(a->s6_addr, mapped_any, 16) == 0;
}

static int bind_v4(int fd, const struct sockaddr_in *in) {
    struct sockaddr_in copy = *in;
    copy.sin_addr = pod_ip;
    return call_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
}

static int bind_v6(int fd, const struct sockaddr_in6 *in6) {
    struct sockaddr_in6 copy = *in6;
    memset(&copy.sin6_addr, 0, sizeof copy.sin6_addr);
    copy.sin6_addr.s6_addr[10] = 0xff;
    copy.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&copy.sin6_addr.s6_addr[12], &pod_ip, 4);
    copy.sin6_scope_id = 0;

    int v6only = 0;
    socklen_t optlen = sizeof v6only;
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) != 0)
        v6only = 0;
    if (v6only) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    int rc = call_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
    if (rc == 0 || !v6only)
        return rc;
    int saved = errno;
    int on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (saved != EADDRINUSE) {
        errno = saved;
        return rc;
    }
    struct sockaddr_in6 loop = *in6;
    loop.sin6_addr = in6addr_loopback;
    loop.sin6_port = 0;
    loop.sin6_scope_id = 0;
    return call_bind(fd, (const struct sockaddr *)&loop, sizeof loop);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    if (have_pod_ip && addr != NULL) {
        if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
            if (in->sin_addr.s_addr == htonl(INADDR_ANY))
                return bind_v4(fd, in);
        } else if (addr->sa_family == AF_INET6 &&
                   len >= (socklen_t)sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
            if (is_v6_wildcard(&in6->sin6_addr))
                return bind_v6(fd, in6);
        }
    }
    return call_bind(fd, addr, len);
}

int listen(int fd, int backlog) {
    if (real_listen == NULL) {
        real_listen = (listen_fn)dlsym(RTLD_NEXT, "listen");
        if (real_listen == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    int type = 0;
    socklen_t type_len = sizeof type;
    if (have_pod_ip && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 &&
        (type == SOCK_STREAM || type == SOCK_SEQPACKET)) {
        /* An unbound TCP socket would be bound to the wildcard address by listen() itself. */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *)&ss;
                if (in->sin_port == 0 && in->sin_addr.s_addr == htonl(INADDR_ANY))
                    bind_v4(fd, in);
            } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
                if (in6->sin6_port == 0 && is_v6_wildcard(&in6->sin6_addr))
                    bind_v6(fd, in6);
            }
        }
    }
    return real_listen(fd, backlog);
}
