/*
 * gl_internal.h - helpers shared by the library's own .c files (gridledger.c, chain.c,
 * signer.c). Not installed and not part of the API: callers use gridledger.h.
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

struct evp_md_st;
struct evp_pkey_st;

/* The digest of a hash suite name ("" or "sha256", "sm3"); NULL for an unknown suite
 * (or sm3 on an OpenSSL built without it). proof.c. */
const struct evp_md_st *gl_hash_suite_md(const char *suite);

/* 1 when `key` is an EC key on P-256. signer.c. */
int gl_key_is_p256(struct evp_pkey_st *key);

#endif
