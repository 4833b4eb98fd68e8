/*
 * gl_internal.h - helpers shared by the library's own .c files (gridledger.c, chain.c,
 * contracts.c, proof.c, signer.c). Not installed and not part of the API: callers use gridledger.h.
 */
#ifndef GL_INTERNAL_H
#define GL_INTERNAL_H

#include "gridledger.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Formats into err[errlen]; does nothing when err is NULL or errlen is 0. */
static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Starts a call whose request is the single message `req`: gl_stream_open, gl_stream_send,
 * gl_stream_close_send. Returns the stream, ready for gl_stream_next, or NULL (nothing to
 * free) with the reason in status_out (may be NULL).
 */
gl_stream *gl_stream_open_with(gl_client *c, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
                               gl_status *status_out);

/* A borrowed string field: NULL = "". Packing only reads it. */
static inline char *gl_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

/* A unary call whose response the caller casts to its type (*out may be NULL: the
 * response is freed). */
static inline int gl_unary_as(gl_client *c, const char *method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *desc, void **out,
                              uint64_t timeout_ms, gl_status *status_out)
{
    ProtobufCMessage *resp = NULL;
    int code = gl_unary(c, method, req, desc, &resp, timeout_ms, status_out);
    if (out != NULL)
        *out = resp;
    else if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

/* The next message of a server stream, cast by the caller (out may be NULL: the message
 * is freed). 1 with a message, 0 at the end (status_out says how it ended). */
static inline int gl_stream_next_as(gl_stream *s, void **out, gl_status *status_out)
{
    ProtobufCMessage *m = NULL;
    if (out != NULL)
        *out = NULL;
    if (gl_stream_next(s, &m, status_out) == 0)
        return 0;
    if (out != NULL)
        *out = m;
    else
        protobuf_c_message_free_unpacked(m, NULL);
    return 1;
}

struct evp_md_st;
struct evp_pkey_st;

/* The digest of a hash suite name ("" or "sha256", "sm3"); NULL for an unknown suite
 * (or sm3 on an OpenSSL built without it). proof.c. */
const struct evp_md_st *gl_hash_suite_md(const char *suite);

/* 1 when `key` is an EC key on P-256. signer.c. */
int gl_key_is_p256(struct evp_pkey_st *key);

#endif
