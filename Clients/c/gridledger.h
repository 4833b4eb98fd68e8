/*
 * gridledger.h - a small blocking C client for the GridLedger wire protocol v1
 * (Docs/wire-protocol.md): mutual TLS 1.3, framed protobuf-c messages, gRPC call model.
 *
 * Messages are the protoc-c structs of Sources/CGridProto (the codec the node uses too).
 *
 * Thread safety: NONE per connection. A gl_client and its streams must be used by one
 * thread at a time (different connections may be used from different threads). The
 * library keeps no global mutable state beyond what OpenSSL itself keeps.
 *
 * Calls: one call (stream) is open on a connection at a time. gl_unary and the typed
 * wrappers open and finish their own stream; a gl_stream must be finished or freed
 * (gl_stream_free) before the next call starts, and all streams must be freed before
 * gl_close.
 *
 * Signals: writing to a socket the peer has closed raises SIGPIPE. The library does not
 * change signal dispositions; a program that must survive a dropped connection ignores
 * SIGPIPE (gridctl does).
 *
 * Errors: every call reports a gl_status. Codes are gRPC's (0 OK .. 16 UNAUTHENTICATED).
 * Local failures use the same codes: connection/TLS failures and GOAWAY are UNAVAILABLE,
 * an expired deadline is DEADLINE_EXCEEDED, a response above max_message_bytes is
 * RESOURCE_EXHAUSTED, a protocol violation by the server is INTERNAL.
 */
#ifndef GRIDLEDGER_H
#define GRIDLEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "gridledger/health.pb-c.h"
#include "gridledger/ops.pb-c.h"
#include "gridledger/wire.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes. */
typedef enum gl_code {
    GL_OK = 0,
    GL_CANCELLED = 1,
    GL_UNKNOWN = 2,
    GL_INVALID_ARGUMENT = 3,
    GL_DEADLINE_EXCEEDED = 4,
    GL_NOT_FOUND = 5,
    GL_ALREADY_EXISTS = 6,
    GL_PERMISSION_DENIED = 7,
    GL_RESOURCE_EXHAUSTED = 8,
    GL_FAILED_PRECONDITION = 9,
    GL_ABORTED = 10,
    GL_OUT_OF_RANGE = 11,
    GL_UNIMPLEMENTED = 12,
    GL_INTERNAL = 13,
    GL_UNAVAILABLE = 14,
    GL_DATA_LOSS = 15,
    GL_UNAUTHENTICATED = 16,
} gl_code;

#define GL_STATUS_MESSAGE_MAX 1024

/* Final status of a call. `message` is NUL-terminated, truncated to fit. */
typedef struct gl_status {
    int code;
    char message[GL_STATUS_MESSAGE_MAX];
} gl_status;

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" for numbers outside 0..16. */
const char *gl_status_code_name(int code);

typedef struct gl_options {
    const char *host;        /* DNS name or IP literal to dial (required) */
    uint16_t port;           /* required */
    const char *cert_path;   /* client certificate (PEM, may hold a chain; required) */
    const char *key_path;    /* its private key (PEM; required) */
    const char *ca_path;     /* deployment CA (PEM): the ONLY trust root (required) */
    const char *server_name; /* name/IP the server certificate must carry; NULL = host */
    uint32_t connect_timeout_ms;  /* TCP connect + TLS handshake; 0 = 10000 */
    uint32_t max_message_bytes;   /* largest response MESSAGE accepted; 0 = 4 MiB */
} gl_options;

typedef struct gl_client gl_client;
typedef struct gl_stream gl_stream;

/*
 * Connects: TCP, then TLS 1.3 with the client certificate, trusting only opts->ca_path,
 * offering ALPN "gridledger/1" and requiring the server to select it, checking that the
 * server certificate names server_name (subjectAltName DNS or IP) and that its subject OU
 * is "node". Returns NULL on failure with a reason in `err` (may be NULL).
 * The result is freed by gl_close.
 */
gl_client *gl_connect(const gl_options *opts, char *err, size_t errlen);

/* Sends TLS close_notify (best effort), closes the socket, frees everything. NULL is fine. */
void gl_close(gl_client *c);

/*
 * 1 while the connection can start calls; 0 after a GOAWAY or a connection error (open a
 * new connection then).
 */
int gl_client_usable(const gl_client *c);

/*
 * One unary call. `method` is "/<package>.<Service>/<Method>". `req` is any protoc-c
 * message; the response is decoded with `resp_desc` into *resp_out, which the caller
 * frees with protobuf_c_message_free_unpacked(*resp_out, NULL). *resp_out is NULL unless
 * the call succeeded. timeout_ms 0 = no deadline; otherwise it is sent as
 * CallHeaders.timeout_ms and enforced locally (CANCEL is sent when it expires).
 * Returns the status code (GL_OK on success); status_out (may be NULL) gets code+message.
 */
int gl_unary(gl_client *c, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
             uint64_t timeout_ms, gl_status *status_out);

/* ---- Streams: server-, client- and bidirectional streaming -------------------------------
 *
 * Server streaming:   s = gl_stream_open(...); gl_stream_send(s, req);
 *                     gl_stream_close_send(s); while (gl_stream_next(s, &m, &st) == 1) {...}
 *                     gl_stream_free(s);
 * Client streaming:   open; send ... send; close_send; gl_stream_next once for the
 *                     response, again for the end; free.
 *
 * Frames are written lazily so that END_STREAM rides on the last HEADERS or MESSAGE frame
 * as the protocol requires: HEADERS goes out with the first send (or close_send), each
 * send writes the previous message. A bidirectional caller that reads (gl_stream_next)
 * before close_send flushes what it has sent so far; if nothing is sent afterwards,
 * close_send then fails with FAILED_PRECONDITION (protocol v1 has no bare END_STREAM).
 */

/*
 * Opens a call. The deadline clock (timeout_ms, 0 = none) starts now. Returns NULL when
 * the call cannot start (connection unusable, another stream still open, bad method), with
 * the reason in status_out (may be NULL).
 */
gl_stream *gl_stream_open(gl_client *c, const char *method,
                          const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
                          gl_status *status_out);

/* Queues one request message. Returns 0, or -1 with status_out filled (the call is then
 * finished with that status). */
int gl_stream_send(gl_stream *s, const ProtobufCMessage *msg, gl_status *status_out);

/* Half-closes: sets END_STREAM on the last frame and writes it. Returns 0 or -1. */
int gl_stream_close_send(gl_stream *s, gl_status *status_out);

/*
 * Waits for the next response. Returns 1 with a message in *msg_out (free it with
 * protobuf_c_message_free_unpacked(*msg_out, NULL)), or 0 at the end of the call with the
 * final status in status_out (OK, the server's TRAILERS, or a local failure). After the
 * end, further calls return 0 and the same status.
 */
int gl_stream_next(gl_stream *s, ProtobufCMessage **msg_out, gl_status *status_out);

/* Cancels a live call (sends CANCEL; the final status becomes CANCELLED). No-op once
 * the call has ended. Does not free. */
void gl_stream_cancel(gl_stream *s);

/* Cancels if still live, then frees. NULL is fine. */
void gl_stream_free(gl_stream *s);

/* Stream id on the wire (odd, increasing per connection); for logs. */
uint32_t gl_stream_id(const gl_stream *s);

/* ---- Typed wrappers ------------------------------------------------------------------ */

/* /gridledger.Ops/GetStatus. On GL_OK *out is set; free with
 * gridledger__get_status_response__free_unpacked(*out, NULL). */
int gl_get_status(gl_client *c, uint64_t timeout_ms, Gridledger__GetStatusResponse **out,
                  gl_status *status_out);

/* /gridledger.Health/Check. `service` NULL or "" = the node itself. */
int gl_health_check(gl_client *c, const char *service, uint64_t timeout_ms,
                    Gridledger__ServingStatus *out, gl_status *status_out);

/* /gridledger.Health/Watch: opens the server stream (request sent, send side closed).
 * Returns NULL on failure. Read updates with gl_health_watch_next; free with
 * gl_stream_free. */
gl_stream *gl_health_watch(gl_client *c, const char *service, uint64_t timeout_ms,
                           gl_status *status_out);

/* 1 with *out set to the next status, or 0 at the end with status_out filled. */
int gl_health_watch_next(gl_stream *s, Gridledger__ServingStatus *out, gl_status *status_out);

/* "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" (the enum name without its
 * SERVING_STATUS_ prefix); "UNKNOWN" for values outside the enum. */
const char *gl_serving_status_name(Gridledger__ServingStatus s);

#ifdef __cplusplus
}
#endif

#endif /* GRIDLEDGER_H */
