/*
 * signer.c - transaction signing and ids (Docs/wire-protocol.md, "Submitting"):
 *
 *   SignedTransaction.payload            = serialized TxPayload, exactly as signed
 *   SignedTransaction.signature          = ECDSA P-256 signature (DER) over SHA-256(payload)
 *   SignedTransaction.signer_certificate = the signer's X.509 certificate (DER)
 *   tx-id                                = SHA-256(payload)
 *
 * OpenSSL 3: EVP_DigestSign / EVP_DigestVerify with EVP_sha256 (the digest is computed by
 * the call; the signature is the DER ECDSA-Sig-Value).
 */
#include "gridledger.h"
#include "gl_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct gl_signer {
    X509 *cert;
    EVP_PKEY *key;
    uint8_t *cert_der;
    size_t cert_der_len;
    gl_party party;
};

/* The reason of the newest OpenSSL error (or `fallback`); clears the queue. */
static const char *ossl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r != NULL ? r : fallback;
}

/* Copies the single entry `nid` of `name` into out (UTF-8). 0 ok (out "" when absent),
 * -1 when repeated or too long. */
static int subject_field(const X509_NAME *name, int nid, const char *label, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    out[0] = 0;
    if (idx < 0)
        return 0;
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
        set_err(err, errlen, "certificate subject has more than one %s", label);
        return -1;
    }
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = d != NULL ? ASN1_STRING_to_UTF8(&utf8, d) : -1;
    if (n < 0) {
        set_err(err, errlen, "certificate subject %s does not decode", label);
        ERR_clear_error();
        return -1;
    }
    if ((size_t)n >= outlen || memchr(utf8, 0, (size_t)n) != NULL) {
        set_err(err, errlen, "certificate subject %s is longer than %zu bytes or holds NUL", label,
                outlen - 1);
        OPENSSL_free(utf8);
        return -1;
    }
    memcpy(out, utf8, (size_t)n);
    out[n] = 0;
    OPENSSL_free(utf8);
    return 0;
}

static int party_of(X509 *cert, gl_party *out, char *err, size_t errlen)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    memset(out, 0, sizeof *out);
    if (subject == NULL) {
        set_err(err, errlen, "certificate has no subject");
        return -1;
    }
    if (subject_field(subject, NID_commonName, "CN", out->name, sizeof out->name, err, errlen) != 0 ||
        subject_field(subject, NID_organizationalUnitName, "OU", out->role, sizeof out->role, err,
                      errlen) != 0 ||
        subject_field(subject, NID_localityName, "L", out->district, sizeof out->district, err,
                      errlen) != 0)
        return -1;
    return 0;
}

int gl_party_from_der(const uint8_t *der, size_t len, gl_party *out, char *err, size_t errlen)
{
    const unsigned char *p = der;
    X509 *cert = NULL;
    int rc = -1;

    if (der == NULL || out == NULL || len > (size_t)LONG_MAX) {
        set_err(err, errlen, "gl_party_from_der: der and out are required");
        goto end;
    }
    cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL || p != der + len) {
        set_err(err, errlen, "certificate DER does not parse: %s", ossl_reason("trailing bytes"));
        goto end;
    }
    rc = party_of(cert, out, err, errlen);
end:
    X509_free(cert);
    return rc;
}

/* Never prompt for a passphrase: an encrypted key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int gl_key_is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_is_a(key, "EC"))
        return 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &glen) != 1) {
        ERR_clear_error();
        return 0;
    }
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

gl_signer *gl_signer_load(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    gl_signer *s = NULL, *result = NULL;
    BIO *bio = NULL;
    unsigned char *der = NULL;

    if (cert_path == NULL || key_path == NULL) {
        set_err(err, errlen, "gl_signer_load: cert_path and key_path are required");
        goto end;
    }
    ERR_clear_error();
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    bio = BIO_new_file(cert_path, "r");
    if (bio == NULL) {
        set_err(err, errlen, "cannot open certificate %s: %s", cert_path, ossl_reason("open failed"));
        goto end;
    }
    s->cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (s->cert == NULL) {
        set_err(err, errlen, "cannot read a PEM certificate from %s: %s", cert_path,
                ossl_reason("no certificate"));
        goto end;
    }
    BIO_free(bio);
    bio = BIO_new_file(key_path, "r");
    if (bio == NULL) {
        set_err(err, errlen, "cannot open key %s: %s", key_path, ossl_reason("open failed"));
        goto end;
    }
    s->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (s->key == NULL) {
        set_err(err, errlen, "cannot read an unencrypted PEM private key from %s: %s", key_path,
                ossl_reason("no key"));
        goto end;
    }
    if (!gl_key_is_p256(s->key)) {
        set_err(err, errlen, "key %s is not an ECDSA P-256 key", key_path);
        goto end;
    }
    if (X509_check_private_key(s->cert, s->key) != 1) {
        set_err(err, errlen, "key %s does not match certificate %s", key_path, cert_path);
        ERR_clear_error();
        goto end;
    }
    int n = i2d_X509(s->cert, &der);
    if (n <= 0) {
        set_err(err, errlen, "cannot encode certificate %s as DER: %s", cert_path,
                ossl_reason("i2d_X509 failed"));
        goto end;
    }
    s->cert_der = malloc((size_t)n);
    if (s->cert_der == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    memcpy(s->cert_der, der, (size_t)n);
    s->cert_der_len = (size_t)n;
    char why[200];
    if (party_of(s->cert, &s->party, why, sizeof why) != 0) {
        set_err(err, errlen, "%s: %s", cert_path, why);
        goto end;
    }
    result = s;
    s = NULL;
end:
    OPENSSL_free(der);
    BIO_free(bio);
    gl_signer_free(s);
    return result;
}

void gl_signer_free(gl_signer *s)
{
    if (s == NULL)
        return;
    free(s->cert_der);
    EVP_PKEY_free(s->key);
    X509_free(s->cert);
    free(s);
}

const gl_party *gl_signer_party(const gl_signer *s)
{
    return s != NULL ? &s->party : NULL;
}

const uint8_t *gl_signer_certificate_der(const gl_signer *s, size_t *len)
{
    if (len != NULL)
        *len = s != NULL ? s->cert_der_len : 0;
    return s != NULL ? s->cert_der : NULL;
}

int gl_tx_id(const uint8_t *payload, size_t len, uint8_t out[GL_TX_ID_LEN])
{
    unsigned int n = 0;
    static const uint8_t empty[1] = {0};
    if (out == NULL || (payload == NULL && len > 0))
        return -1;
    if (EVP_Digest(payload != NULL ? payload : empty, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != GL_TX_ID_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

void gl_signed_transaction_clear(Gridledger__SignedTransaction *tx)
{
    if (tx == NULL)
        return;
    free(tx->payload.data);
    free(tx->signature.data);
    free(tx->signer_certificate.data);
    gridledger__signed_transaction__init(tx);
}

int gl_sign_transaction(const gl_signer *s, const Gridledger__TxPayload *payload,
                        Gridledger__SignedTransaction *out, uint8_t tx_id[GL_TX_ID_LEN],
                        char *err, size_t errlen)
{
    EVP_MD_CTX *ctx = NULL;
    uint8_t *body = NULL, *sig = NULL, *cert = NULL;
    size_t body_len, sig_len = 0;
    int rc = -1;

    if (out != NULL)
        gridledger__signed_transaction__init(out);
    if (s == NULL || payload == NULL || out == NULL) {
        set_err(err, errlen, "gl_sign_transaction: signer, payload and out are required");
        goto end;
    }
    ERR_clear_error();
    body_len = gridledger__tx_payload__get_packed_size(payload);
    body = malloc(body_len > 0 ? body_len : 1);
    cert = malloc(s->cert_der_len);
    if (body == NULL || cert == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    if (gridledger__tx_payload__pack(payload, body) != body_len) {
        set_err(err, errlen, "TxPayload packed to an unexpected size");
        goto end;
    }
    memcpy(cert, s->cert_der, s->cert_der_len);
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, body, body_len) != 1) {
        set_err(err, errlen, "cannot start signing: %s", ossl_reason("EVP_DigestSign failed"));
        goto end;
    }
    sig = malloc(sig_len);
    if (sig == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    if (EVP_DigestSign(ctx, sig, &sig_len, body, body_len) != 1) {
        set_err(err, errlen, "signing failed: %s", ossl_reason("EVP_DigestSign failed"));
        goto end;
    }
    if (tx_id != NULL && gl_tx_id(body, body_len, tx_id) != 0) {
        set_err(err, errlen, "SHA-256 failed");
        goto end;
    }
    out->payload.data = body;
    out->payload.len = body_len;
    out->signature.data = sig;
    out->signature.len = sig_len;
    out->signer_certificate.data = cert;
    out->signer_certificate.len = s->cert_der_len;
    body = sig = cert = NULL;
    rc = 0;
end:
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(cert);
    free(body);
    return rc;
}

int gl_verify_transaction(const Gridledger__SignedTransaction *tx, char *err, size_t errlen)
{
    const unsigned char *p;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    int rc = -1;

    if (tx == NULL) {
        set_err(err, errlen, "gl_verify_transaction: tx is required");
        goto end;
    }
    ERR_clear_error();
    p = tx->signer_certificate.data;
    if (p == NULL || tx->signer_certificate.len > (size_t)LONG_MAX ||
        (cert = d2i_X509(NULL, &p, (long)tx->signer_certificate.len)) == NULL) {
        set_err(err, errlen, "signer certificate does not parse: %s", ossl_reason("empty"));
        goto end;
    }
    key = X509_get_pubkey(cert);
    if (key == NULL || !gl_key_is_p256(key)) {
        set_err(err, errlen, "signer certificate key is not ECDSA P-256");
        ERR_clear_error();
        goto end;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) != 1) {
        set_err(err, errlen, "cannot start verifying: %s", ossl_reason("EVP_DigestVerifyInit failed"));
        goto end;
    }
    static const uint8_t empty[1] = {0};
    if (EVP_DigestVerify(ctx, tx->signature.data != NULL ? tx->signature.data : empty,
                         tx->signature.len, tx->payload.data != NULL ? tx->payload.data : empty,
                         tx->payload.len) != 1) {
        set_err(err, errlen, "signature does not verify with the signer certificate");
        ERR_clear_error();
        goto end;
    }
    rc = 0;
end:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}
