/*
 * gridledger.c - blocking GridLedger client: TLS 1.3 (OpenSSL 3), frames (frame.c),
 * calls as streams (Docs/wire-protocol.md). See gridledger.h for the contracts.
 *
 * Invariants:
 *  - At most one live stream per connection (c->active); frames for any other stream id
 *    are ignored (stale calls that were cancelled or timed out locally).
 *  - c->wbuf holds only frames of c->active that are not yet written; the flags byte of
 *    the last one (s->pending_flags_off) may still get END_STREAM.
 *  - After a connection error (c->broken) no more I/O happens on the socket.
 *  - The socket is non-blocking; every wait goes through poll() with the call's deadline.
 */
#include "gridledger.h"
#include "gl_internal.h"
#include "frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define GL_ALPN "gridledger/1"
#define GL_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define GL_WBUF_FLUSH_THRESHOLD (64u * 1024u)
#define GL_CANCEL_WRITE_MS 1000u
#define GL_REASON_MAX 512

struct gl_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int handshake_done;
    char peer[320]; /* "host:port", for messages */

    gl_frame_parser parser;
    uint8_t rbuf[16384]; /* bytes read from TLS, not yet fed to the parser */
    size_t rpos, rlen;

    uint8_t *wbuf; /* frames of the active stream not yet written */
    size_t wlen, wcap;

    uint32_t next_stream_id;
    uint32_t max_message_bytes;

    int broken; /* connection error: no further I/O */
    int broken_code;
    char broken_why[GL_REASON_MAX];
    int goaway; /* server sent GOAWAY: no new calls */
    uint32_t goaway_last_stream_id;
    char goaway_why[GL_REASON_MAX];

    gl_stream *active;

    char chain_id[GL_CHAIN_ID_MAX + 1]; /* chain-service requests carry it; "" = only chain */
};

struct gl_stream {
    gl_client *c; /* NULL once the client was closed under it */
    uint32_t id;
    const ProtobufCMessageDescriptor *resp_desc;
    uint64_t timeout_ms;
    uint64_t deadline; /* CLOCK_MONOTONIC ms; 0 = none */
    long pending_flags_off; /* in c->wbuf, or -1 */
    int headers_sent; /* HEADERS reached the socket: CANCEL is meaningful */
    int send_closed;
    int done;
    gl_status final;
};

/* ---- small helpers ------------------------------------------------------------------- */

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *gl_status_code_name(int code)
{
    if (code < 0 || code >= (int)(sizeof code_names / sizeof code_names[0]))
        return "UNKNOWN";
    return code_names[code];
}

static void vset_status(gl_status *st, int code, const char *fmt, va_list ap)
{
    if (st == NULL)
        return;
    st->code = code;
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    st->md_count = 0;
    st->md_len = 0;
    st->md_truncated = 0;
}

static void set_status(gl_status *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_status(st, code, fmt, ap);
    va_end(ap);
}

/* Copies only the used part of the metadata buffer (a gl_status is ~17 KiB). */
static void copy_status(gl_status *dst, const gl_status *src)
{
    if (dst == NULL || dst == src)
        return;
    dst->code = src->code;
    memcpy(dst->message, src->message, sizeof dst->message);
    dst->md_count = src->md_count;
    dst->md_len = src->md_len;
    dst->md_truncated = src->md_truncated;
    memcpy(dst->md, src->md, src->md_len);
}

/*
 * Trailer metadata layout in gl_status.md, one entry after the other:
 *   entry = key NUL value-len value      ; value-len: uint32, host byte order (memcpy)
 */
static void status_set_metadata(gl_status *st, const Gridledger__CallStatus *cs)
{
    st->md_count = 0;
    st->md_len = 0;
    st->md_truncated = 0;
    for (size_t i = 0; i < cs->n_metadata; i++) {
        const Gridledger__MetadataEntry *e = cs->metadata[i];
        const char *key = e->key != NULL ? e->key : "";
        size_t klen = strlen(key);
        size_t vlen = e->value.len;
        size_t room = sizeof st->md - st->md_len;
        if (vlen > UINT32_MAX || klen + 1 + sizeof(uint32_t) > room ||
            vlen > room - (klen + 1 + sizeof(uint32_t))) {
            st->md_truncated = 1;
            break;
        }
        uint32_t v32 = (uint32_t)vlen;
        unsigned char *p = st->md + st->md_len;
        memcpy(p, key, klen + 1);
        memcpy(p + klen + 1, &v32, sizeof v32);
        if (vlen > 0)
            memcpy(p + klen + 1 + sizeof v32, e->value.data, vlen);
        st->md_len += klen + 1 + sizeof v32 + vlen;
        st->md_count++;
    }
}

size_t gl_status_metadata_count(const gl_status *st)
{
    return st != NULL ? st->md_count : 0;
}

int gl_status_metadata_at(const gl_status *st, size_t i, const char **key,
                          const uint8_t **value, size_t *value_len)
{
    size_t off = 0;
    if (st == NULL || i >= st->md_count)
        return -1;
    for (size_t k = 0;; k++) {
        const unsigned char *p = st->md + off;
        size_t klen = strlen((const char *)p);
        uint32_t v32;
        memcpy(&v32, p + klen + 1, sizeof v32);
        if (k == i) {
            if (key != NULL)
                *key = (const char *)p;
            if (value != NULL)
                *value = p + klen + 1 + sizeof v32;
            if (value_len != NULL)
                *value_len = v32;
            return 0;
        }
        off += klen + 1 + sizeof v32 + v32;
    }
}

int gl_status_metadata_get(const gl_status *st, const char *key, const uint8_t **value,
                           size_t *value_len)
{
    const char *k;
    const uint8_t *v;
    size_t vlen;
    if (st == NULL || key == NULL)
        return 0;
    for (size_t i = 0; i < st->md_count; i++) {
        if (gl_status_metadata_at(st, i, &k, &v, &vlen) == 0 && strcmp(k, key) == 0) {
            if (value != NULL)
                *value = v;
            if (value_len != NULL)
                *value_len = vlen;
            return 1;
        }
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t deadline_after(uint64_t timeout_ms)
{
    uint64_t now = now_ms();
    if (timeout_ms == 0 || timeout_ms > UINT64_MAX - now)
        return 0; /* none, or beyond any clock */
    return now + timeout_ms;
}

static int expired(uint64_t deadline)
{
    return deadline != 0 && now_ms() >= deadline;
}

/* Waits until fd is ready for `events`. 1 ready, 0 deadline passed, -1 poll failed. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline != 0) {
            uint64_t n = now_ms();
            if (n >= deadline)
                return 0;
            timeout = deadline - n > (uint64_t)INT_MAX ? INT_MAX : (int)(deadline - n);
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int r = poll(&p, 1, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r > 0)
            return 1; /* includes POLLERR/POLLHUP: the next I/O call reports it */
    }
}

/* Describes the failure of an SSL_* call; consumes the OpenSSL error queue. */
/* A sentence for an OpenSSL error the node's side caused, or NULL when there is none. */
static const char *tls_reason_sentence(unsigned long e)
{
    if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL)
        return NULL;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        return "the node rejected this client's certificate (is it issued by the node's CA and "
               "still valid?)";
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
    case SSL_R_NO_APPLICATION_PROTOCOL:
        return "the server does not speak gridledger/1 (ALPN); is this a GridLedger node's port?";
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
        return "the server does not speak TLS 1.3 (is this a GridLedger node's port?)";
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return "the node closed the connection during the TLS handshake (did it reject this "
               "client's certificate?)";
    default:
        return NULL;
    }
}

static void describe_ssl_error(SSL *ssl, int sslerr, int saved_errno, char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "";
    const char *sentence = tls_reason_sentence(e);

    if (sentence != NULL) {
        snprintf(buf, len, "%s", sentence);
        ERR_clear_error();
        return;
    }
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);
        if (reason != NULL)
            snprintf(detail, sizeof detail, "%s", reason);
        else
            ERR_error_string_n(e, detail, sizeof detail);
    }
    if (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK) {
        long v = SSL_get_verify_result(ssl);
        snprintf(buf, len, "%s (%s)", detail[0] ? detail : "certificate verify failed",
                 X509_verify_cert_error_string(v));
    } else if (sslerr == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, len, "connection closed by the server (TLS close_notify)");
    } else if (sslerr == SSL_ERROR_SYSCALL && e == 0) {
        if (saved_errno != 0)
            snprintf(buf, len, "%s", strerror(saved_errno));
        else
            snprintf(buf, len, "connection closed by the server");
    } else if (detail[0] != 0) {
        snprintf(buf, len, "%s", detail);
    } else {
        snprintf(buf, len, "TLS error %d", sslerr);
    }
    ERR_clear_error();
}

/* Marks the connection unusable. The first reason wins. */
static void conn_break(gl_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    if (c->broken)
        return;
    c->broken = 1;
    c->broken_code = code;
    va_start(ap, fmt);
    vsnprintf(c->broken_why, sizeof c->broken_why, fmt, ap);
    va_end(ap);
}

/* ---- TLS I/O --------------------------------------------------------------------------- */

/* Waits until an SSL call that failed with `sslerr` (SSL_ERROR_WANT_READ or _WANT_WRITE) can
 * be retried. 1 ready, 0 deadline, -1 poll failed (connection then broken). */
static int conn_wait(gl_client *c, int sslerr, uint64_t deadline)
{
    int w = wait_fd(c->fd, sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    if (w < 0)
        conn_break(c, GL_UNAVAILABLE, "poll on connection to %s failed: %s", c->peer,
                   strerror(errno));
    return w;
}

/* Reads some bytes into c->rbuf. 1 read, 0 deadline, -1 connection error (c->broken). */
static int conn_read_some(gl_client *c, uint64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(c->ssl, c->rbuf, (int)sizeof c->rbuf);
        if (n > 0) {
            c->rpos = 0;
            c->rlen = (size_t)n;
            return 1;
        }
        int saved_errno = errno;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w = conn_wait(c, e, deadline);
            if (w <= 0)
                return w;
            continue;
        }
        char why[300];
        describe_ssl_error(c->ssl, e, saved_errno, why, sizeof why);
        if (c->goaway)
            conn_break(c, GL_UNAVAILABLE, "%s; %s", c->goaway_why, why);
        else if (!gl_frame_parser_at_boundary(&c->parser))
            conn_break(c, GL_UNAVAILABLE, "connection to %s lost in the middle of a frame: %s",
                       c->peer, why);
        else
            conn_break(c, GL_UNAVAILABLE, "connection to %s lost: %s", c->peer, why);
        return -1;
    }
}

/* Writes all of c->wbuf. 1 done, 0 deadline (connection then broken), -1 error (broken). */
static int conn_flush(gl_client *c, uint64_t deadline)
{
    size_t off = 0;

    if (c->broken)
        return -1;
    while (off < c->wlen) {
        size_t chunk = c->wlen - off;
        if (chunk > (size_t)INT_MAX)
            chunk = (size_t)INT_MAX;
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(c->ssl, c->wbuf + off, (int)chunk);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        int saved_errno = errno;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w = conn_wait(c, e, deadline);
            if (w == 0) {
                /* A frame may be half written: the connection cannot be reused. */
                conn_break(c, GL_DEADLINE_EXCEEDED, "write to %s timed out", c->peer);
                return 0;
            }
            if (w < 0)
                return -1;
            continue;
        }
        char why[300];
        describe_ssl_error(c->ssl, e, saved_errno, why, sizeof why);
        conn_break(c, GL_UNAVAILABLE, "write to %s failed: %s", c->peer, why);
        return -1;
    }
    c->wlen = 0;
    return 1;
}

static int wbuf_reserve(gl_client *c, size_t extra)
{
    if (c->wcap - c->wlen >= extra)
        return 0;
    size_t need = c->wlen + extra;
    size_t cap = c->wcap ? c->wcap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = realloc(c->wbuf, cap);
    if (nb == NULL)
        return -1;
    c->wbuf = nb;
    c->wcap = cap;
    return 0;
}

/*
 * Appends one frame to c->wbuf: the body is `msg` packed, or `raw`. Returns the offset of
 * its flags byte, or -1 when out of memory.
 */
static long wbuf_append(gl_client *c, uint8_t type, uint8_t flags, uint32_t sid,
                        const ProtobufCMessage *msg, const uint8_t *raw, uint32_t rawlen)
{
    size_t body = msg != NULL ? protobuf_c_message_get_packed_size(msg) : rawlen;
    if (body > UINT32_MAX || wbuf_reserve(c, GL_FRAME_HEADER_LEN + body) != 0)
        return -1;
    uint8_t *p = c->wbuf + c->wlen;
    gl_frame_header h = {(uint32_t)body, type, flags, sid};
    gl_frame_header_encode(&h, p);
    if (msg != NULL)
        protobuf_c_message_pack(msg, p + GL_FRAME_HEADER_LEN);
    else if (rawlen > 0)
        memcpy(p + GL_FRAME_HEADER_LEN, raw, rawlen);
    long flags_off = (long)(c->wlen + 5);
    c->wlen += GL_FRAME_HEADER_LEN + body;
    return flags_off;
}

/* ---- connect / close ------------------------------------------------------------------- */

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Why a TCP connect failed with errno `e`, for people. */
static void describe_connect_errno(int e, uint64_t timeout_ms, char *buf, size_t len)
{
    switch (e) {
    case ECONNREFUSED:
        snprintf(buf, len, "connection refused (is the node running?)");
        break;
    case ETIMEDOUT:
        snprintf(buf, len, "no answer within %llu ms (is the address right, the node up and "
                 "the port open?)", (unsigned long long)timeout_ms);
        break;
    case EHOSTUNREACH:
        snprintf(buf, len, "host unreachable (check the address and the network)");
        break;
    case ENETUNREACH:
        snprintf(buf, len, "network unreachable (check the address and the network)");
        break;
    case EADDRNOTAVAIL:
        snprintf(buf, len, "address not available (check the address)");
        break;
    default: {
        const char *t = strerror(e);
        snprintf(buf, len, "%c%s", t[0] >= 'A' && t[0] <= 'Z' ? t[0] - 'A' + 'a' : t[0], t + 1);
    }
    }
}

/* Opens a non-blocking TCP connection to `peer` (host, port) before `deadline`
 * (`timeout_ms` after the start). Returns the fd, or -1 with a sentence in err. */
static int tcp_connect(const char *host, uint16_t port, const char *peer, uint64_t deadline,
                       uint64_t timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL, *a;
    char portstr[8];
    int fd = -1, result = -1;
    char last[256] = "no address";

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    int g = getaddrinfo(host, portstr, &hints, &ai);
    if (g != 0) {
        set_err(err, errlen, "cannot connect to %s: unknown host %s (%s; check the address)", peer,
                host, gai_strerror(g));
        goto end;
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            snprintf(last, sizeof last, "socket: %s", strerror(errno));
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            snprintf(last, sizeof last, "fcntl O_NONBLOCK: %s", strerror(errno));
            goto next;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                describe_connect_errno(errno, timeout_ms, last, sizeof last);
                goto next;
            }
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w == 0) {
                describe_connect_errno(ETIMEDOUT, timeout_ms, last, sizeof last);
                goto next;
            }
            if (w < 0) {
                snprintf(last, sizeof last, "poll: %s", strerror(errno));
                goto next;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
                snprintf(last, sizeof last, "getsockopt SO_ERROR: %s", strerror(errno));
                goto next;
            }
            if (soerr != 0) {
                describe_connect_errno(soerr, timeout_ms, last, sizeof last);
                goto next;
            }
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
            snprintf(last, sizeof last, "setsockopt TCP_NODELAY: %s", strerror(errno));
            goto next;
        }
        result = fd;
        fd = -1;
        break;
    next:
        close(fd);
        fd = -1;
    }
    if (result < 0)
        set_err(err, errlen, "cannot connect to %s: %s", peer, last);
end:
    if (ai != NULL)
        freeaddrinfo(ai);
    return result;
}

/* Checks the verified server certificate: exactly one subject OU, equal to "node". */
static int check_node_role(SSL *ssl, char *err, size_t errlen)
{
    X509 *peer = NULL;
    int ok = 0;
    int idx, count = 0, ou_len = 0;
    char ou[64] = "";

    peer = SSL_get1_peer_certificate(ssl);
    if (peer == NULL) {
        set_err(err, errlen, "server presented no certificate");
        goto end;
    }
    X509_NAME *subject = X509_get_subject_name(peer);
    if (subject == NULL) {
        set_err(err, errlen, "server certificate has no subject");
        goto end;
    }
    for (idx = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, -1); idx >= 0;
         idx = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, idx)) {
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
        ou_len = d != NULL ? ASN1_STRING_length(d) : 0;
        int n = ou_len;
        if (n < 0 || (size_t)n >= sizeof ou)
            n = ou_len < 0 ? 0 : (int)sizeof ou - 1;
        if (d != NULL && n > 0)
            memcpy(ou, ASN1_STRING_get0_data(d), (size_t)n);
        ou[n] = 0;
        count++;
    }
    /* Compare by length too: an OU "node\0..." must not pass. */
    if (count != 1 || ou_len != 4 || memcmp(ou, "node", 4) != 0) {
        set_err(err, errlen, "server certificate role (subject OU) is \"%s\"%s, expected \"node\"",
                ou, count > 1 ? " (several OUs)" : "");
        goto end;
    }
    ok = 1;
end:
    X509_free(peer);
    return ok;
}

/* Why the node's certificate did not verify (X509_V_ERR_*), for people. */
static void describe_verify_error(long v, const char *name, const char *ca_path, char *buf,
                                  size_t len)
{
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        snprintf(buf, len, "the node's certificate is not signed by the CA in %s (wrong --ca, or a "
                 "node of another deployment?)", ca_path);
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(buf, len, "the node's certificate does not name %s (use --server-name with a "
                 "name it carries)", name);
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(buf, len, "the node's certificate has expired");
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(buf, len, "the node's certificate is not valid yet (check the clocks)");
        break;
    default:
        snprintf(buf, len, "the node's certificate was refused (%s)",
                 X509_verify_cert_error_string(v));
    }
}

gl_client *gl_connect(const gl_options *opts, char *err, size_t errlen)
{
    gl_client *c = NULL, *result = NULL;
    static const unsigned char alpn[] = "\x0c" GL_ALPN;

    if (opts == NULL || opts->host == NULL || opts->host[0] == 0 || opts->port == 0 ||
        opts->cert_path == NULL || opts->key_path == NULL || opts->ca_path == NULL) {
        set_err(err, errlen, "gl_connect: host, port, cert_path, key_path and ca_path are required");
        goto end;
    }
    const char *name = opts->server_name != NULL ? opts->server_name : opts->host;
    uint64_t timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                   : GL_DEFAULT_CONNECT_TIMEOUT_MS;
    uint64_t deadline = now_ms() + timeout_ms;
    const char *files[3][2] = {{opts->cert_path, "client certificate"},
                               {opts->key_path, "client key"},
                               {opts->ca_path, "CA certificate"}};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i][0], "r");
        if (f == NULL) {
            set_err(err, errlen, "cannot read the %s %s: %s", files[i][1], files[i][0],
                    strerror(errno));
            goto end;
        }
        fclose(f);
    }

    c = calloc(1, sizeof *c);
    if (c == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    c->fd = -1;
    c->next_stream_id = 1;
    c->max_message_bytes = opts->max_message_bytes ? opts->max_message_bytes
                                                   : GL_DEFAULT_MAX_MESSAGE_BYTES;
    gl_frame_parser_init(&c->parser, c->max_message_bytes);
    snprintf(c->peer, sizeof c->peer, strchr(opts->host, ':') ? "[%s]:%u" : "%s:%u", opts->host,
             (unsigned)opts->port);
    if (gl_client_set_chain_id(c, opts->chain_id) != 0) {
        set_err(err, errlen, "gl_connect: chain_id is longer than %d bytes", GL_CHAIN_ID_MAX);
        goto end;
    }

    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        set_err(err, errlen, "SSL_CTX_new failed: %s", ERR_reason_error_string(ERR_get_error()));
        goto end;
    }
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c->ctx, TLS1_3_VERSION) != 1) {
        set_err(err, errlen, "cannot restrict TLS to version 1.3");
        goto end;
    }
    if (SSL_CTX_use_certificate_chain_file(c->ctx, opts->cert_path) != 1) {
        set_err(err, errlen, "cannot load client certificate %s: %s", opts->cert_path,
                ERR_reason_error_string(ERR_get_error()));
        goto end;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ctx, opts->key_path, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "cannot load client key %s: %s", opts->key_path,
                ERR_reason_error_string(ERR_get_error()));
        goto end;
    }
    if (SSL_CTX_check_private_key(c->ctx) != 1) {
        set_err(err, errlen, "client key %s does not match certificate %s", opts->key_path,
                opts->cert_path);
        goto end;
    }
    /* The deployment CA is the only trust root: no default verify paths. */
    if (SSL_CTX_load_verify_locations(c->ctx, opts->ca_path, NULL) != 1) {
        set_err(err, errlen, "cannot load CA certificate %s: %s", opts->ca_path,
                ERR_reason_error_string(ERR_get_error()));
        goto end;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof alpn - 1) != 0) { /* 0 = success */
        set_err(err, errlen, "cannot set ALPN");
        goto end;
    }
    ERR_clear_error();

    c->fd = tcp_connect(opts->host, opts->port, c->peer, deadline, timeout_ms, err, errlen);
    if (c->fd < 0)
        goto end;

    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL) {
        set_err(err, errlen, "SSL_new failed: %s", ERR_reason_error_string(ERR_get_error()));
        goto end;
    }
    if (SSL_set_fd(c->ssl, c->fd) != 1) {
        set_err(err, errlen, "SSL_set_fd failed");
        goto end;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip_literal(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
            set_err(err, errlen, "cannot verify against IP address %s", name);
            goto end;
        }
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1) {
            set_err(err, errlen, "cannot verify against host name %s", name);
            goto end;
        }
        if (SSL_set_tlsext_host_name(c->ssl, name) != 1) {
            set_err(err, errlen, "cannot set SNI %s", name);
            goto end;
        }
    }

    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        int saved_errno = errno;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
            if (w == 0) {
                set_err(err, errlen, "cannot connect to %s: no answer to the TLS handshake within "
                        "%llu ms (is this a GridLedger node's port?)", c->peer,
                        (unsigned long long)timeout_ms);
                goto end;
            }
            if (w < 0) {
                set_err(err, errlen, "cannot connect to %s: poll during the TLS handshake: %s",
                        c->peer, strerror(errno));
                goto end;
            }
            continue;
        }
        char why[300];
        long verify = SSL_get_verify_result(c->ssl);
        if (verify != X509_V_OK) {
            describe_verify_error(verify, name, opts->ca_path, why, sizeof why);
            ERR_clear_error();
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
                   (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE)) {
            snprintf(why, sizeof why, "the node closed the connection during the TLS handshake "
                     "(did it reject this client's certificate?)");
        } else {
            describe_ssl_error(c->ssl, e, saved_errno, why, sizeof why);
        }
        set_err(err, errlen, "cannot connect to %s: TLS handshake failed: %s", c->peer, why);
        goto end;
    }
    c->handshake_done = 1;

    if (SSL_version(c->ssl) != TLS1_3_VERSION) {
        set_err(err, errlen, "server at %s negotiated %s, not TLS 1.3", c->peer,
                SSL_get_version(c->ssl));
        goto end;
    }
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        char why[300];
        describe_verify_error(SSL_get_verify_result(c->ssl), name, opts->ca_path, why, sizeof why);
        set_err(err, errlen, "cannot connect to %s: TLS handshake failed: %s", c->peer, why);
        goto end;
    }
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(c->ssl, &sel, &sel_len);
    if (sel_len != sizeof GL_ALPN - 1 || memcmp(sel, GL_ALPN, sel_len) != 0) {
        set_err(err, errlen, "cannot connect to %s: TLS handshake failed: the server does not speak "
                "%s (ALPN); is this a GridLedger node's port?", c->peer, GL_ALPN);
        goto end;
    }
    char roleerr[200];
    if (!check_node_role(c->ssl, roleerr, sizeof roleerr)) {
        set_err(err, errlen, "cannot connect to %s: TLS handshake failed: %s", c->peer, roleerr);
        goto end;
    }

    result = c;
    c = NULL;
end:
    gl_close(c);
    return result;
}

int gl_client_set_chain_id(gl_client *c, const char *chain_id)
{
    size_t n = chain_id != NULL ? strlen(chain_id) : 0;
    if (c == NULL || n > GL_CHAIN_ID_MAX)
        return -1;
    if (n > 0)
        memcpy(c->chain_id, chain_id, n);
    c->chain_id[n] = 0;
    return 0;
}

const char *gl_client_chain_id(const gl_client *c)
{
    return c != NULL ? c->chain_id : "";
}

void gl_close(gl_client *c)
{
    if (c == NULL)
        return;
    if (c->active != NULL) {
        c->active->c = NULL; /* caller forgot gl_stream_free: make the stream inert */
        if (!c->active->done) {
            c->active->done = 1;
            set_status(&c->active->final, GL_CANCELLED, "connection closed by the client");
        }
        c->active = NULL;
    }
    if (c->ssl != NULL) {
        if (c->handshake_done && !c->broken)
            (void)SSL_shutdown(c->ssl); /* best effort close_notify; non-blocking */
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    SSL_CTX_free(c->ctx);
    free(c->wbuf);
    gl_frame_parser_free(&c->parser);
    free(c);
}

int gl_client_usable(const gl_client *c)
{
    return c != NULL && !c->broken && !c->goaway;
}

/* ---- reading frames ------------------------------------------------------------------ */

/* Reads one frame. 1 frame, 2 skipped oversized MESSAGE, 0 deadline, -1 connection error. */
static int read_frame(gl_client *c, uint64_t deadline, gl_frame *f)
{
    for (;;) {
        if (c->broken)
            return -1;
        if (c->rpos < c->rlen) {
            size_t used = 0;
            gl_parse_result pr = gl_frame_parser_feed(&c->parser, c->rbuf + c->rpos,
                                                      c->rlen - c->rpos, &used, f);
            c->rpos += used;
            if (pr == GL_PARSE_FRAME)
                return 1;
            if (pr == GL_PARSE_SKIPPED)
                return 2;
            if (pr == GL_PARSE_ERROR) {
                conn_break(c, GL_INTERNAL, "protocol error from %s: %s", c->peer, c->parser.error);
                return -1;
            }
            continue;
        }
        int r = conn_read_some(c, deadline);
        if (r <= 0)
            return r;
    }
}

/* Answers a PING with ACK and the same 8 bytes. 1 ok, 0 deadline, -1 connection error. */
static int answer_ping(gl_client *c, const gl_frame *f, uint64_t deadline)
{
    if (wbuf_append(c, GL_FRAME_PING, GL_FLAG_ACK, 0, NULL, f->body, GL_PING_BYTES) < 0) {
        conn_break(c, GL_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    return conn_flush(c, deadline);
}

/* Records a GOAWAY: no new calls on this connection. 0 ok, -1 connection error. */
static int record_goaway(gl_client *c, const gl_frame *f)
{
    Gridledger__GoAway *g = gridledger__go_away__unpack(NULL, f->header.length, f->body);
    if (g == NULL) {
        conn_break(c, GL_INTERNAL, "protocol error from %s: GOAWAY body does not decode", c->peer);
        return -1;
    }
    c->goaway = 1;
    c->goaway_last_stream_id = g->last_stream_id;
    snprintf(c->goaway_why, sizeof c->goaway_why, "server %s sent GOAWAY (%s: %s)", c->peer,
             gl_status_code_name((int)g->code), g->message ? g->message : "");
    gridledger__go_away__free_unpacked(g, NULL);
    return 0;
}

/*
 * Between calls: handles the connection frames that already arrived (PING, GOAWAY, e.g.
 * the idle GOAWAY) and notices a closed connection, without blocking, so that a new call
 * fails fast with UNAVAILABLE instead of being sent into a dead connection.
 */
static void conn_drain_idle(gl_client *c)
{
    gl_frame f;
    while (!c->broken) {
        if (read_frame(c, now_ms(), &f) <= 0)
            return; /* nothing pending, or broken */
        switch (f.header.type) {
        case GL_FRAME_PING:
            if ((f.header.flags & GL_FLAG_ACK) == 0)
                (void)answer_ping(c, &f, now_ms() + GL_CANCEL_WRITE_MS);
            break;
        case GL_FRAME_GOAWAY:
            (void)record_goaway(c, &f);
            break;
        case GL_FRAME_HEADERS:
        case GL_FRAME_CANCEL:
        case GL_FRAME_END:
            conn_break(c, GL_INTERNAL, "protocol error from %s: server sent a %s frame", c->peer,
                       gl_frame_type_name(f.header.type));
            break;
        default:
            break; /* MESSAGE/TRAILERS of a finished call */
        }
    }
}

/* ---- streams ------------------------------------------------------------------------------ */

uint32_t gl_stream_id(const gl_stream *s)
{
    return s != NULL ? s->id : 0;
}

/* Ends the stream locally with a status; detaches it from the connection. */
static void stream_finish(gl_stream *s, int code, const char *fmt, ...)
{
    va_list ap;
    if (s->done)
        return;
    s->done = 1;
    va_start(ap, fmt);
    vset_status(&s->final, code, fmt, ap);
    va_end(ap);
    if (s->c != NULL && s->c->active == s) {
        s->c->active = NULL;
        s->c->wlen = 0; /* unwritten frames of this call are dropped */
    }
}

/* Sends CANCEL for a stream the server knows about (best effort, short write deadline). */
static void stream_send_cancel(gl_stream *s)
{
    gl_client *c = s->c;
    if (c == NULL || c->broken || !s->headers_sent || s->done)
        return;
    c->wlen = 0;
    if (wbuf_append(c, GL_FRAME_CANCEL, 0, s->id, NULL, NULL, 0) < 0)
        return;
    (void)conn_flush(c, now_ms() + GL_CANCEL_WRITE_MS);
    c->wlen = 0;
}

static void stream_fail_conn(gl_stream *s)
{
    stream_finish(s, s->c->broken_code, "%s", s->c->broken_why);
}

static void stream_expire(gl_stream *s)
{
    stream_send_cancel(s);
    stream_finish(s, GL_DEADLINE_EXCEEDED, "deadline of %llu ms exceeded",
                  (unsigned long long)s->timeout_ms);
}

/* Writes the buffered frames of the stream. 0 ok, -1 the stream ended (s->final). */
static int stream_flush(gl_stream *s)
{
    gl_client *c = s->c;
    if (c->wlen == 0)
        return 0;
    int r = conn_flush(c, s->deadline);
    if (r == 0) {
        stream_finish(s, GL_DEADLINE_EXCEEDED, "deadline of %llu ms exceeded while writing",
                      (unsigned long long)s->timeout_ms);
        return -1;
    }
    if (r < 0) {
        stream_fail_conn(s);
        return -1;
    }
    s->headers_sent = 1;
    s->pending_flags_off = -1;
    return 0;
}

gl_stream *gl_stream_open(gl_client *c, const char *method,
                          const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
                          gl_status *status_out)
{
    gl_stream *s = NULL, *result = NULL;
    Gridledger__CallHeaders h;

    if (c == NULL || resp_desc == NULL) {
        set_status(status_out, GL_INVALID_ARGUMENT, "gl_stream_open: client and resp_desc are required");
        goto end;
    }
    if (method == NULL || method[0] != '/' || strchr(method + 1, '/') == NULL) {
        set_status(status_out, GL_INVALID_ARGUMENT, "method \"%s\" is not /<package>.<Service>/<Method>",
                   method ? method : "(null)");
        goto end;
    }
    if (c->active == NULL)
        conn_drain_idle(c);
    if (c->broken) {
        set_status(status_out, GL_UNAVAILABLE, "connection unusable: %s", c->broken_why);
        goto end;
    }
    if (c->goaway) {
        set_status(status_out, GL_UNAVAILABLE, "%s; open a new connection", c->goaway_why);
        goto end;
    }
    if (c->active != NULL) {
        set_status(status_out, GL_FAILED_PRECONDITION,
                   "call on stream %lu is still open on this connection (one call at a time)",
                   (unsigned long)c->active->id);
        goto end;
    }
    if (c->next_stream_id > 0x7fffffffu) {
        set_status(status_out, GL_UNAVAILABLE, "stream ids exhausted on this connection");
        goto end;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_status(status_out, GL_RESOURCE_EXHAUSTED, "out of memory");
        goto end;
    }
    s->c = c;
    s->id = c->next_stream_id;
    s->resp_desc = resp_desc;
    s->timeout_ms = timeout_ms;
    s->deadline = deadline_after(timeout_ms);
    s->pending_flags_off = -1;

    gridledger__call_headers__init(&h);
    h.method = (char *)method;
    h.timeout_ms = timeout_ms;
    size_t hlen = gridledger__call_headers__get_packed_size(&h);
    if (hlen > GL_MAX_HEADERS_BYTES) {
        set_status(status_out, GL_INVALID_ARGUMENT, "call headers of %zu bytes exceed %u", hlen,
                   GL_MAX_HEADERS_BYTES);
        goto end;
    }
    c->wlen = 0;
    long off = wbuf_append(c, GL_FRAME_HEADERS, 0, s->id, &h.base, NULL, 0);
    if (off < 0) {
        set_status(status_out, GL_RESOURCE_EXHAUSTED, "out of memory");
        goto end;
    }
    s->pending_flags_off = off;
    c->next_stream_id += 2;
    c->active = s;
    set_status(status_out, GL_OK, "");
    result = s;
    s = NULL;
end:
    free(s);
    return result;
}

int gl_stream_send(gl_stream *s, const ProtobufCMessage *msg, gl_status *status_out)
{
    if (s == NULL || msg == NULL) {
        set_status(status_out, GL_INVALID_ARGUMENT, "gl_stream_send: stream and message are required");
        return -1;
    }
    if (s->c == NULL && !s->done)
        stream_finish(s, GL_UNAVAILABLE, "connection closed by the client");
    if (s->done) {
        copy_status(status_out, &s->final);
        return -1;
    }
    if (s->send_closed) {
        set_status(status_out, GL_FAILED_PRECONDITION, "send side of stream %lu already closed",
                   (unsigned long)s->id);
        return -1;
    }
    gl_client *c = s->c;
    if (expired(s->deadline)) {
        stream_expire(s);
        copy_status(status_out, &s->final);
        return -1;
    }
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > c->max_message_bytes) {
        stream_send_cancel(s);
        stream_finish(s, GL_RESOURCE_EXHAUSTED, "request message of %zu bytes exceeds the %lu-byte limit",
                      len, (unsigned long)c->max_message_bytes);
        copy_status(status_out, &s->final);
        return -1;
    }
    /* Every buffered frame is final now (a newer one follows): write them if many. */
    if (c->wlen >= GL_WBUF_FLUSH_THRESHOLD && stream_flush(s) != 0) {
        copy_status(status_out, &s->final);
        return -1;
    }
    long off = wbuf_append(c, GL_FRAME_MESSAGE, 0, s->id, msg, NULL, 0);
    if (off < 0) {
        stream_send_cancel(s);
        stream_finish(s, GL_RESOURCE_EXHAUSTED, "out of memory");
        copy_status(status_out, &s->final);
        return -1;
    }
    s->pending_flags_off = off;
    set_status(status_out, GL_OK, "");
    return 0;
}

int gl_stream_close_send(gl_stream *s, gl_status *status_out)
{
    if (s == NULL) {
        set_status(status_out, GL_INVALID_ARGUMENT, "gl_stream_close_send: stream is required");
        return -1;
    }
    if (s->c == NULL && !s->done)
        stream_finish(s, GL_UNAVAILABLE, "connection closed by the client");
    if (s->done) {
        copy_status(status_out, &s->final);
        return -1;
    }
    if (s->send_closed) {
        set_status(status_out, GL_OK, "");
        return 0;
    }
    if (expired(s->deadline)) {
        stream_expire(s);
        copy_status(status_out, &s->final);
        return -1;
    }
    if (s->pending_flags_off >= 0) {
        /* The last HEADERS or MESSAGE is still buffered: END_STREAM rides on it. */
        s->c->wbuf[s->pending_flags_off] |= GL_FLAG_END_STREAM;
    } else if (wbuf_append(s->c, GL_FRAME_END, 0, s->id, NULL, NULL, 0) < 0) {
        /* (else: everything was written already, a read came first: an END frame.) */
        stream_send_cancel(s);
        stream_finish(s, GL_RESOURCE_EXHAUSTED, "out of memory");
        copy_status(status_out, &s->final);
        return -1;
    }
    if (stream_flush(s) != 0) {
        copy_status(status_out, &s->final);
        return -1;
    }
    s->send_closed = 1;
    set_status(status_out, GL_OK, "");
    return 0;
}

int gl_stream_next(gl_stream *s, ProtobufCMessage **msg_out, gl_status *status_out)
{
    if (msg_out != NULL)
        *msg_out = NULL;
    if (s == NULL || msg_out == NULL) {
        set_status(status_out, GL_INVALID_ARGUMENT, "gl_stream_next: stream and msg_out are required");
        return 0;
    }
    if (s->c == NULL && !s->done)
        stream_finish(s, GL_UNAVAILABLE, "connection closed by the client");
    if (!s->done && stream_flush(s) != 0)
        goto ended;

    while (!s->done) {
        gl_client *c = s->c;
        gl_frame f;

        if (expired(s->deadline)) {
            stream_expire(s);
            break;
        }
        int r = read_frame(c, s->deadline, &f);
        if (r == 0) {
            stream_expire(s);
            break;
        }
        if (r < 0) {
            stream_fail_conn(s);
            break;
        }
        switch (f.header.type) {
        case GL_FRAME_PING:
            if ((f.header.flags & GL_FLAG_ACK) != 0)
                continue;
            r = answer_ping(c, &f, s->deadline);
            if (r == 0)
                stream_expire(s);
            else if (r < 0)
                stream_fail_conn(s);
            continue;
        case GL_FRAME_GOAWAY:
            if (record_goaway(c, &f) != 0)
                stream_fail_conn(s);
            else if (s->id > c->goaway_last_stream_id)
                stream_finish(s, GL_UNAVAILABLE, "%s before stream %lu started", c->goaway_why,
                              (unsigned long)s->id);
            continue;
        case GL_FRAME_HEADERS:
        case GL_FRAME_CANCEL:
        case GL_FRAME_END:
            conn_break(c, GL_INTERNAL, "protocol error from %s: server sent a %s frame", c->peer,
                       gl_frame_type_name(f.header.type));
            stream_fail_conn(s);
            continue;
        default:
            break;
        }
        if (f.header.stream_id != s->id)
            continue; /* a stale call's frame */
        if (f.header.type == GL_FRAME_MESSAGE) {
            if (r == 2) {
                stream_send_cancel(s);
                stream_finish(s, GL_RESOURCE_EXHAUSTED,
                              "response message of %lu bytes exceeds the %lu-byte limit",
                              (unsigned long)f.header.length, (unsigned long)c->max_message_bytes);
                break;
            }
            ProtobufCMessage *m = protobuf_c_message_unpack(s->resp_desc, NULL, f.header.length, f.body);
            if (m == NULL) {
                stream_send_cancel(s);
                stream_finish(s, GL_INTERNAL, "response of %lu bytes does not decode as %s",
                              (unsigned long)f.header.length, s->resp_desc->name);
                break;
            }
            *msg_out = m;
            set_status(status_out, GL_OK, "");
            return 1;
        }
        /* TRAILERS */
        Gridledger__CallStatus *cs = gridledger__call_status__unpack(NULL, f.header.length, f.body);
        if (cs == NULL) {
            stream_finish(s, GL_INTERNAL, "TRAILERS of stream %lu do not decode",
                          (unsigned long)s->id);
            break;
        }
        stream_finish(s, (int)cs->code, "%s", cs->message ? cs->message : "");
        status_set_metadata(&s->final, cs);
        gridledger__call_status__free_unpacked(cs, NULL);
    }
ended:
    copy_status(status_out, &s->final);
    return 0;
}

void gl_stream_cancel(gl_stream *s)
{
    if (s == NULL || s->done)
        return;
    stream_send_cancel(s);
    stream_finish(s, GL_CANCELLED, "cancelled by the client");
}

void gl_stream_free(gl_stream *s)
{
    if (s == NULL)
        return;
    gl_stream_cancel(s);
    free(s);
}

/* ---- unary and typed wrappers ------------------------------------------------------------ */

gl_stream *gl_stream_open_with(gl_client *c, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
                               gl_status *status_out)
{
    gl_stream *s = gl_stream_open(c, method, resp_desc, timeout_ms, status_out);
    if (s == NULL)
        return NULL;
    if (gl_stream_send(s, req, status_out) != 0 || gl_stream_close_send(s, status_out) != 0) {
        gl_stream_free(s);
        return NULL;
    }
    return s;
}

int gl_unary(gl_client *c, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
             uint64_t timeout_ms, gl_status *status_out)
{
    gl_status st;
    gl_stream *s = NULL;
    ProtobufCMessage *resp = NULL, *extra = NULL;

    set_status(&st, GL_OK, "");
    if (resp_out != NULL)
        *resp_out = NULL;
    if (resp_out == NULL || req == NULL) {
        set_status(&st, GL_INVALID_ARGUMENT, "gl_unary: req and resp_out are required");
        goto end;
    }
    s = gl_stream_open_with(c, method, req, resp_desc, timeout_ms, &st);
    if (s == NULL)
        goto end;
    if (gl_stream_next(s, &resp, &st) == 0) {
        if (st.code == GL_OK)
            set_status(&st, GL_INTERNAL, "server ended unary call %s without a response", method);
        goto end;
    }
    if (gl_stream_next(s, &extra, &st) == 1) {
        gl_stream_cancel(s);
        set_status(&st, GL_INTERNAL, "server sent more than one response to unary call %s", method);
        goto end;
    }
    if (st.code != GL_OK)
        goto end;
    *resp_out = resp;
    resp = NULL;
end:
    if (extra != NULL)
        protobuf_c_message_free_unpacked(extra, NULL);
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    gl_stream_free(s);
    copy_status(status_out, &st);
    return st.code;
}

int gl_get_status(gl_client *c, uint64_t timeout_ms, Gridledger__GetStatusResponse **out,
                  gl_status *status_out)
{
    Gridledger__GetStatusRequest req;
    ProtobufCMessage *resp = NULL;

    gridledger__get_status_request__init(&req);
    int code = gl_unary(c, "/gridledger.Ops/GetStatus", &req.base,
                        &gridledger__get_status_response__descriptor, &resp, timeout_ms, status_out);
    if (out != NULL)
        *out = (Gridledger__GetStatusResponse *)resp;
    else if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

int gl_health_check(gl_client *c, const char *service, uint64_t timeout_ms,
                    Gridledger__ServingStatus *out, gl_status *status_out)
{
    Gridledger__HealthCheckRequest req;
    ProtobufCMessage *resp = NULL;

    gridledger__health_check_request__init(&req);
    req.service = (char *)(service != NULL ? service : "");
    int code = gl_unary(c, "/gridledger.Health/Check", &req.base,
                        &gridledger__health_check_response__descriptor, &resp, timeout_ms,
                        status_out);
    if (resp != NULL) {
        if (out != NULL)
            *out = ((Gridledger__HealthCheckResponse *)resp)->status;
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return code;
}

gl_stream *gl_health_watch(gl_client *c, const char *service, uint64_t timeout_ms,
                           gl_status *status_out)
{
    Gridledger__HealthCheckRequest req;
    gridledger__health_check_request__init(&req);
    req.service = (char *)(service != NULL ? service : "");
    return gl_stream_open_with(c, "/gridledger.Health/Watch", &req.base,
                               &gridledger__health_check_response__descriptor, timeout_ms,
                               status_out);
}

int gl_health_watch_next(gl_stream *s, Gridledger__ServingStatus *out, gl_status *status_out)
{
    ProtobufCMessage *m = NULL;
    if (gl_stream_next(s, &m, status_out) == 0)
        return 0;
    if (out != NULL)
        *out = ((Gridledger__HealthCheckResponse *)m)->status;
    protobuf_c_message_free_unpacked(m, NULL);
    return 1;
}

const char *gl_serving_status_name(Gridledger__ServingStatus s)
{
    switch (s) {
    case GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_UNKNOWN: return "UNKNOWN";
    case GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_SERVING: return "SERVING";
    case GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_NOT_SERVING: return "NOT_SERVING";
    case GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
    }
}
