/* fake_server: a tiny blocking HTTP/1.1 server on 127.0.0.1 in a forked child, for unit tests. */
#ifndef TL_TEST_FAKE_SERVER_H
#define TL_TEST_FAKE_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The server forks once per connection and serves keep-alive requests on it in order, so the
 * handler is plain blocking code. Counters live in a shared mapping so the test can read them.
 */

struct fake_request {
    char method[16];
    char target[1024]; /* path and query */
    char headers[8192];
    char *body; /* NUL-terminated; freed by the server */
    size_t body_len;
};

struct fake_shared {
    int connections; /* accepted connections */
    int requests;    /* requests read */
    int counter;     /* free for handlers, e.g. "fail the first N times" */
    int lists;       /* more of the same, for scripts with several steps */
    int watches;
    char last_target[1024];
    char last_headers[8192];
};

/* Writes one response to fd; return false to close the connection afterwards. */
typedef bool (*fake_handler_fn)(int fd, const struct fake_request *req, struct fake_shared *shared);

struct fake_server {
    pid_t pid;
    int port;
    struct fake_shared *shared;
};

static inline void fake_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static inline bool fake_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        data += w;
        len -= (size_t)w;
    }
    return true;
}

/* A complete response with Content-Length. extra_headers: "" or lines ending in "\r\n". */
static inline bool fake_respond(int fd, int status, const char *extra_headers, const char *body,
                                size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%sConnection: keep-alive\r\n\r\n",
                     status, body_len, extra_headers);
    if (n < 0 || (size_t)n >= sizeof(head))
        return false;
    return fake_write_all(fd, head, (size_t)n) && fake_write_all(fd, body, body_len);
}

static inline bool fake_chunk(int fd, const char *data, size_t len)
{
    char size[32];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    return n > 0 && fake_write_all(fd, size, (size_t)n) && fake_write_all(fd, data, len) &&
           fake_write_all(fd, "\r\n", 2);
}

static inline bool fake_chunked_head(int fd, int status, const char *content_type)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                     status, content_type);
    return n > 0 && fake_write_all(fd, head, (size_t)n);
}

static inline bool fake_chunked_end(int fd)
{
    return fake_write_all(fd, "0\r\n\r\n", 5);
}

/* Reads one request; false on EOF or garbage. */
static inline bool fake_read_request(int fd, struct fake_request *req)
{
    static char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof(buf) - 1)
            return false;
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 4;
    if (sscanf(buf, "%15s %1023s", req->method, req->target) != 2)
        return false;
    char *line = strstr(buf, "\r\n");
    size_t hlen = head_len - (size_t)(line - buf);
    if (hlen >= sizeof(req->headers))
        hlen = sizeof(req->headers) - 1;
    memcpy(req->headers, line, hlen);
    req->headers[hlen] = '\0';
    size_t content_length = 0;
    for (char *p = req->headers; (p = strstr(p, "\r\n")); p += 2) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            content_length = (size_t)strtoul(p + 17, NULL, 10);
    }
    req->body = malloc(content_length + 1);
    if (!req->body)
        return false;
    size_t have = len - head_len;
    if (have > content_length)
        have = content_length;
    memcpy(req->body, buf + head_len, have);
    while (have < content_length) {
        ssize_t r = read(fd, req->body + have, content_length - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(req->body);
            return false;
        }
        have += (size_t)r;
    }
    req->body[content_length] = '\0';
    req->body_len = content_length;
    return true;
}

static inline void fake_serve_connection(int fd, fake_handler_fn handler,
                                         struct fake_shared *shared)
{
    struct fake_request req;
    while (memset(&req, 0, sizeof(req)), fake_read_request(fd, &req)) {
        __atomic_add_fetch(&shared->requests, 1, __ATOMIC_SEQ_CST);
        snprintf(shared->last_target, sizeof(shared->last_target), "%s", req.target);
        snprintf(shared->last_headers, sizeof(shared->last_headers), "%s", req.headers);
        bool keep = handler(fd, &req, shared);
        free(req.body);
        if (!keep)
            break;
    }
    close(fd);
}

/* Starts the server; returns false on failure. */
static inline bool fake_server_start(struct fake_server *srv, fake_handler_fn handler)
{
    srv->shared = mmap(NULL, sizeof(struct fake_shared), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (srv->shared == MAP_FAILED)
        return false;
    memset(srv->shared, 0, sizeof(*srv->shared));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return false;
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        close(lfd);
        return false;
    }
    srv->port = ntohs(addr.sin_port);
    fflush(NULL);
    srv->pid = fork();
    if (srv->pid < 0) {
        close(lfd);
        return false;
    }
    if (srv->pid == 0) {
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN); /* connection children reap themselves */
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0) {
                if (errno == EINTR)
                    continue;
                _exit(1);
            }
            __atomic_add_fetch(&srv->shared->connections, 1, __ATOMIC_SEQ_CST);
            pid_t child = fork();
            if (child == 0) {
                close(lfd);
                fake_serve_connection(fd, handler, srv->shared);
                _exit(0);
            }
            close(fd);
        }
    }
    setpgid(srv->pid, srv->pid); /* also here, in case the child has not run yet */
    close(lfd);
    return true;
}

static inline void fake_server_stop(struct fake_server *srv)
{
    if (srv->pid > 0) {
        kill(-srv->pid, SIGKILL);
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
    if (srv->shared && srv->shared != MAP_FAILED)
        munmap(srv->shared, sizeof(*srv->shared));
    srv->shared = NULL;
}

#endif
