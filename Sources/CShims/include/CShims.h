// CShims: the few OpenSSL entry points Swift cannot import directly (function-like macros).
//
// Every function here is a thin, behaviour-preserving wrapper around the OpenSSL macro of the
// same name (prefix `gl_`). Return values and ownership are exactly those of the wrapped macro.
#ifndef GRIDLEDGER_CSHIMS_H
#define GRIDLEDGER_CSHIMS_H

#include "../../COpenSSL/shim.h"

/// SSL_CTX_set_min_proto_version: returns 1 on success, 0 on failure.
int gl_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);

/// SSL_CTX_set_max_proto_version: returns 1 on success, 0 on failure.
int gl_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);

/// SSL_CTX_set_session_cache_mode: returns the previous mode.
long gl_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);

/// SSL_CTX_set_read_ahead: lets the record layer read as much as is available from the BIO.
void gl_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes);

/// SSL_set_tlsext_host_name (SNI): returns 1 on success, 0 on failure. `name` is copied.
int gl_SSL_set_tlsext_host_name(SSL *ssl, const char *name);

/// OPENSSL_free: frees memory OpenSSL allocated for the caller (i2d_*, BN_bn2hex, ASN1_STRING_to_UTF8).
void gl_OPENSSL_free(void *ptr);

#endif
