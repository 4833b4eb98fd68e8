/*
 * proof.c - offline verification of a gridledger.BlockProof (Docs/anchoring.md, "Proofs"),
 * the algorithm of the Swift SDK's ProofVerifier (Sources/GridClient/ProofVerifier.swift).
 *
 *   H             = the hash suite a BlockHeader names: "sha256" (or empty) or "sm3"
 *   header-hash   = H(serialized BlockHeader, the bytes as given in the proof)
 *   tx-id         = SHA-256(TxPayload bytes as signed)                 ; every chain
 *   fold(leaf)    : node = H(0x00 || leaf); per MerkleStep, leaf upwards:
 *                   promoted -> node; sibling_left -> H(0x01 || sibling || node);
 *                   else H(0x01 || node || sibling)
 *   anchor-digest = SHA-256("gridledger-anchor/v1" || u16 len district || district ||
 *                           u64 from || u64 to || u16 len || last-header-hash ||
 *                           u16 len || headers-root || SHA-256(summary))   ; big-endian
 *
 * Path shape: a path must be the one of its leaf index i in a tree of n leaves (pairs
 * (0,1),(2,3),...; an odd last node promoted), leaf upwards:
 *   while n > 1: i even and i + 1 == n -> promoted, empty sibling;
 *                i even -> not promoted, sibling_left false; i odd -> not promoted,
 *                sibling_left true; then i /= 2, n = (n + 1) / 2
 * with exactly that many steps and every sibling of the suite's hash length (32 bytes).
 * header_path: i = height - from, n = to - from + 1; tx_path and outcome_path:
 * i = main_index, n = the main header's tx_count (main_index < tx_count).
 *
 * Checks: the district header is block proof.height of proof.district; the anchor
 * transaction holds an Anchor of that district covering the height; header_path has the
 * height's shape and fold(header-hash) along it (district suite) = headers_root, and for
 * the range's last block header-hash = last_header_hash; the main header is of the chain
 * the anchor payload names, tx_path has main_index's shape and fold(anchor tx-id) along it
 * (main suite) = its tx_root; anchor_outcome decodes to a TxOutcome of code 0 (else the
 * main chain refused the anchor), outcome_path has main_index's shape and
 * fold(H_main(anchor_outcome bytes as given)) along it = the main header's outcomes_root
 * (not empty). With a CA: every anchor
 * signature is ECDSA P-256 (DER) over SHA-256(anchor-digest), i.e. EVP_DigestVerify with
 * EVP_sha256 over the digest's 32 bytes, by a distinct certificate that chains to the CA
 * (X509_verify_cert, valid now) with subject OU "node" and L = the district; at least one.
 */
#include "gridledger.h"
#include "gl_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define SHA256_LEN 32
static const char anchor_domain[] = "gridledger-anchor/v1";

const struct evp_md_st *gl_hash_suite_md(const char *suite)
{
    if (suite == NULL || suite[0] == 0 || strcmp(suite, "sha256") == 0)
        return EVP_sha256();
#ifndef OPENSSL_NO_SM3
    if (strcmp(suite, "sm3") == 0)
        return EVP_sm3();
#endif
    return NULL;
}

/* H(parts[0] || ... || parts[n-1]) into out (at least GL_HASH_MAX bytes). 0 or -1. */
static int digest_parts(const EVP_MD *md, const uint8_t *const *parts, const size_t *lens,
                        size_t n, uint8_t *out, size_t *outlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = lens[i] == 0 || EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len <= GL_HASH_MAX;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    *outlen = len;
    return 0;
}

static int digest1(const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *out,
                   size_t *outlen)
{
    const uint8_t *parts[1] = {data};
    return digest_parts(md, parts, &len, 1, out, outlen);
}

int gl_merkle_fold(const char *suite, const uint8_t *leaf, size_t leaf_len,
                   Gridledger__MerkleStep *const *steps, size_t n_steps, uint8_t *out,
                   size_t *out_len)
{
    static const uint8_t zero = 0x00, one = 0x01;
    const EVP_MD *md = gl_hash_suite_md(suite);
    uint8_t node[GL_HASH_MAX];
    size_t node_len = 0;
    if (md == NULL || out == NULL || out_len == NULL)
        return -1;
    const uint8_t *lp[2] = {&zero, leaf};
    size_t ll[2] = {1, leaf_len};
    if (digest_parts(md, lp, ll, 2, node, &node_len) != 0)
        return -1;
    for (size_t i = 0; i < n_steps; i++) {
        const Gridledger__MerkleStep *s = steps[i];
        if (s->promoted)
            continue;
        uint8_t next[GL_HASH_MAX];
        const uint8_t *p[3] = {&one, s->sibling_left ? s->sibling.data : node,
                               s->sibling_left ? node : s->sibling.data};
        size_t l[3] = {1, s->sibling_left ? s->sibling.len : node_len,
                       s->sibling_left ? node_len : s->sibling.len};
        if (digest_parts(md, p, l, 3, next, &node_len) != 0)
            return -1;
        memcpy(node, next, node_len);
    }
    memcpy(out, node, node_len);
    *out_len = node_len;
    return 0;
}

/* Whether steps[0..n) is exactly the path of leaf `index` in a tree of `count` leaves
 * (the shape above), every non-promoted sibling hash_len bytes, promoted steps empty. */
static int path_fits(Gridledger__MerkleStep *const *steps, size_t n_steps, uint64_t index,
                     uint64_t count, size_t hash_len)
{
    size_t k = 0;
    if (count == 0 || index >= count || (n_steps > 0 && steps == NULL))
        return 0;
    for (uint64_t i = index, n = count; n > 1; i /= 2, n = n / 2 + n % 2, k++) {
        const Gridledger__MerkleStep *s = k < n_steps ? steps[k] : NULL;
        if (s == NULL)
            return 0;
        if (i % 2 == 0 && i + 1 == n) {
            if (!s->promoted || s->sibling.len != 0)
                return 0;
        } else if (s->promoted || (s->sibling_left != 0) != (i % 2 == 1) ||
                   s->sibling.len != hash_len) {
            return 0;
        }
    }
    return k == n_steps;
}

static void put_u16(uint8_t *p, size_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

int gl_anchor_digest(const Gridledger__Anchor *a, uint8_t out[32])
{
    const char *district = a->district != NULL ? a->district : "";
    size_t dlen = strlen(district);
    uint8_t dl[2], range[16], hl[2], rl[2], summary[GL_HASH_MAX];
    size_t n = 0;
    if (dlen > 0xffff || a->last_header_hash.len > 0xffff || a->headers_root.len > 0xffff)
        return -1;
    if (digest1(EVP_sha256(), a->summary.data, a->summary.len, summary, &n) != 0)
        return -1;
    put_u16(dl, dlen);
    put_u64(range, a->from_height);
    put_u64(range + 8, a->to_height);
    put_u16(hl, a->last_header_hash.len);
    put_u16(rl, a->headers_root.len);
    const uint8_t *parts[] = {(const uint8_t *)anchor_domain, dl, (const uint8_t *)district,
                              range, hl, a->last_header_hash.data, rl, a->headers_root.data,
                              summary};
    size_t lens[] = {sizeof anchor_domain - 1, 2, dlen, 16, 2, a->last_header_hash.len, 2,
                     a->headers_root.len, SHA256_LEN};
    return digest_parts(EVP_sha256(), parts, lens, sizeof lens / sizeof lens[0], out, &n) == 0 &&
                   n == SHA256_LEN
               ? 0
               : -1;
}

static int copy_name(char *dst, const char *src)
{
    size_t n = strlen(src != NULL ? src : "");
    if (n > GL_CHAIN_ID_MAX)
        return -1;
    memcpy(dst, src != NULL ? src : "", n + 1);
    return 0;
}

/* Checks every anchor signature against the CA file; *count = how many. 0 or -1. */
static int check_signatures(const Gridledger__Anchor *a, const char *ca_path, size_t *count,
                            char *err, size_t errlen)
{
    X509_STORE *store = NULL;
    X509_STORE_CTX *vctx = NULL;
    X509 *cert = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t digest[SHA256_LEN];
    uint8_t *seen = NULL;
    int rc = -1;

    *count = 0;
    ERR_clear_error();
    store = X509_STORE_new();
    if (store == NULL || X509_STORE_load_file(store, ca_path) != 1) {
        set_err(err, errlen, "cannot load the CA %s", ca_path);
        goto end;
    }
    if (gl_anchor_digest(a, digest) != 0) {
        set_err(err, errlen, "anchor digest cannot be computed (a field is too long)");
        goto end;
    }
    if (a->n_signatures == 0) {
        set_err(err, errlen, "anchor carries no signature");
        goto end;
    }
    seen = malloc(a->n_signatures * SHA256_LEN);
    if (seen == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    for (size_t i = 0; i < a->n_signatures; i++) {
        const Gridledger__AnchorSignature *s = a->signatures[i];
        const unsigned char *p = s->certificate.data;
        gl_party party;
        char why[200];
        size_t flen = 0;

        X509_free(cert);
        cert = NULL;
        if (p == NULL || s->certificate.len > (size_t)LONG_MAX ||
            (cert = d2i_X509(NULL, &p, (long)s->certificate.len)) == NULL ||
            p != s->certificate.data + s->certificate.len) {
            set_err(err, errlen, "anchor signature %zu: certificate does not decode", i);
            goto end;
        }
        X509_STORE_CTX_free(vctx);
        vctx = X509_STORE_CTX_new();
        if (vctx == NULL || X509_STORE_CTX_init(vctx, store, cert, NULL) != 1 ||
            X509_verify_cert(vctx) != 1) {
            int e = vctx != NULL ? X509_STORE_CTX_get_error(vctx) : X509_V_ERR_UNSPECIFIED;
            set_err(err, errlen, "anchor signature %zu: certificate does not chain to the CA: %s", i,
                    X509_verify_cert_error_string(e));
            goto end;
        }
        if (gl_party_from_der(s->certificate.data, s->certificate.len, &party, why, sizeof why) != 0) {
            set_err(err, errlen, "anchor signature %zu: %s", i, why);
            goto end;
        }
        if (strcmp(party.role, "node") != 0) {
            set_err(err, errlen, "anchor signature %zu: certificate role (OU) is %s, not node", i,
                    party.role);
            goto end;
        }
        if (strcmp(party.district, a->district) != 0) {
            set_err(err, errlen, "anchor signature %zu: certificate district (L) is %s, not %s", i,
                    party.district, a->district);
            goto end;
        }
        EVP_PKEY *key = X509_get0_pubkey(cert);
        if (key == NULL || !gl_key_is_p256(key)) {
            set_err(err, errlen, "anchor signature %zu: certificate key is not ECDSA P-256", i);
            goto end;
        }
        EVP_MD_CTX_free(md);
        md = EVP_MD_CTX_new();
        static const uint8_t empty[1] = {0};
        if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestVerify(md, s->signature.data != NULL ? s->signature.data : empty,
                             s->signature.len, digest, sizeof digest) != 1) {
            set_err(err, errlen, "anchor signature %zu does not verify over the anchor digest", i);
            goto end;
        }
        if (digest1(EVP_sha256(), s->certificate.data, s->certificate.len, seen + i * SHA256_LEN,
                    &flen) != 0) {
            set_err(err, errlen, "SHA-256 failed");
            goto end;
        }
        for (size_t k = 0; k < i; k++) {
            if (memcmp(seen + k * SHA256_LEN, seen + i * SHA256_LEN, SHA256_LEN) == 0) {
                set_err(err, errlen, "anchor signature %zu: certificate signed twice", i);
                goto end;
            }
        }
    }
    *count = a->n_signatures;
    rc = 0;
end:
    ERR_clear_error();
    free(seen);
    EVP_MD_CTX_free(md);
    X509_free(cert);
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    return rc;
}

int gl_verify_proof(const uint8_t *proof, size_t len, const char *ca_path, gl_proof_result *out,
                    char *err, size_t errlen)
{
    Gridledger__BlockProof *p = NULL;
    Gridledger__BlockHeader *header = NULL, *mh = NULL;
    Gridledger__SignedTransaction *tx = NULL;
    Gridledger__TxPayload *payload = NULL;
    Gridledger__TxOutcome *outcome = NULL;
    const EVP_MD *hd, *hm;
    uint8_t root[GL_HASH_MAX], anchor_id[GL_HASH_MAX];
    size_t root_len = 0, id_len = 0;
    int rc = -1;

    if (out == NULL || (proof == NULL && len > 0)) {
        set_err(err, errlen, "gl_verify_proof: proof and out are required");
        return -1;
    }
    memset(out, 0, sizeof *out);
    static const uint8_t empty[1] = {0};
    p = gridledger__block_proof__unpack(NULL, len, proof != NULL ? proof : empty);
    if (p == NULL) {
        set_err(err, errlen, "proof does not decode as gridledger.BlockProof");
        goto end;
    }
    header = gridledger__block_header__unpack(NULL, p->header.len, p->header.data);
    if (header == NULL) {
        set_err(err, errlen, "district header does not decode");
        goto end;
    }
    if ((hd = gl_hash_suite_md(header->hash_suite)) == NULL) {
        set_err(err, errlen, "district header names an unknown hash suite \"%s\"", header->hash_suite);
        goto end;
    }
    if (strcmp(header->chain_id, p->district) != 0 || header->height != p->height) {
        set_err(err, errlen, "header is block %llu of %s, the proof says %llu of %s",
                (unsigned long long)header->height, header->chain_id,
                (unsigned long long)p->height, p->district);
        goto end;
    }
    tx = gridledger__signed_transaction__unpack(NULL, p->anchor_transaction.len,
                                                p->anchor_transaction.data);
    payload = tx != NULL ? gridledger__tx_payload__unpack(NULL, tx->payload.len, tx->payload.data)
                         : NULL;
    if (payload == NULL || payload->body_case != GRIDLEDGER__TX_PAYLOAD__BODY_ANCHOR ||
        payload->anchor == NULL) {
        set_err(err, errlen, "anchor transaction does not decode to an anchor");
        goto end;
    }
    const Gridledger__Anchor *a = payload->anchor;
    if (strcmp(a->district, p->district) != 0 || a->from_height > header->height ||
        header->height > a->to_height) {
        set_err(err, errlen, "anchor covers %s %llu...%llu, not block %llu", a->district,
                (unsigned long long)a->from_height, (unsigned long long)a->to_height,
                (unsigned long long)header->height);
        goto end;
    }
    if (digest1(hd, p->header.data, p->header.len, out->header_hash, &out->header_hash_len) != 0 ||
        gl_merkle_fold(header->hash_suite, out->header_hash, out->header_hash_len, p->header_path,
                       p->n_header_path, root, &root_len) != 0) {
        set_err(err, errlen, "hashing failed");
        goto end;
    }
    if (!path_fits(p->header_path, p->n_header_path, header->height - a->from_height,
                   a->to_height - a->from_height + 1, out->header_hash_len)) {
        set_err(err, errlen, "header path is not the path of block %llu in the anchored range %llu...%llu",
                (unsigned long long)header->height, (unsigned long long)a->from_height,
                (unsigned long long)a->to_height);
        goto end;
    }
    if (root_len != a->headers_root.len || memcmp(root, a->headers_root.data, root_len) != 0) {
        set_err(err, errlen, "district block %llu does not fold to the anchored headers root",
                (unsigned long long)header->height);
        goto end;
    }
    if (header->height == a->to_height &&
        (out->header_hash_len != a->last_header_hash.len ||
         memcmp(out->header_hash, a->last_header_hash.data, out->header_hash_len) != 0)) {
        set_err(err, errlen, "last header hash of the anchor differs");
        goto end;
    }
    mh = gridledger__block_header__unpack(NULL, p->main_header.len, p->main_header.data);
    if (mh == NULL || (hm = gl_hash_suite_md(mh->hash_suite)) == NULL) {
        set_err(err, errlen, "main header does not decode or names an unknown hash suite");
        goto end;
    }
    if (strcmp(mh->chain_id, payload->chain_id) != 0) {
        set_err(err, errlen, "anchor is for chain %s, the main header is of %s", payload->chain_id,
                mh->chain_id);
        goto end;
    }
    if (digest1(hm, p->main_header.data, p->main_header.len, out->main_block_hash,
                &out->main_block_hash_len) != 0) {
        set_err(err, errlen, "hashing failed");
        goto end;
    }
    /* The main suite's hash length: that of the main block hash. */
    if (!path_fits(p->tx_path, p->n_tx_path, p->main_index, mh->tx_count, out->main_block_hash_len)) {
        set_err(err, errlen, "transaction path is not the path of index %u in main block %llu's %u transactions",
                (unsigned)p->main_index, (unsigned long long)mh->height, (unsigned)mh->tx_count);
        goto end;
    }
    if (digest1(EVP_sha256(), tx->payload.data, tx->payload.len, anchor_id, &id_len) != 0 ||
        gl_merkle_fold(mh->hash_suite, anchor_id, id_len, p->tx_path, p->n_tx_path, root,
                       &root_len) != 0) {
        set_err(err, errlen, "hashing failed");
        goto end;
    }
    if (root_len != mh->tx_root.len || memcmp(root, mh->tx_root.data, root_len) != 0) {
        set_err(err, errlen, "anchor transaction does not fold to main block %llu's transaction root",
                (unsigned long long)mh->height);
        goto end;
    }
    outcome = gridledger__tx_outcome__unpack(NULL, p->anchor_outcome.len,
                                             p->anchor_outcome.data != NULL ? p->anchor_outcome.data : empty);
    if (outcome == NULL) {
        set_err(err, errlen, "anchor outcome does not decode");
        goto end;
    }
    if (outcome->code != 0) {
        set_err(err, errlen, "the main chain refused this anchor (outcome code %u%s%s)",
                (unsigned)outcome->code, outcome->message[0] != 0 ? ": " : "", outcome->message);
        goto end;
    }
    if (!path_fits(p->outcome_path, p->n_outcome_path, p->main_index, mh->tx_count,
                   out->main_block_hash_len)) {
        set_err(err, errlen, "outcome path is not the path of index %u in main block %llu's %u outcomes",
                (unsigned)p->main_index, (unsigned long long)mh->height, (unsigned)mh->tx_count);
        goto end;
    }
    if (mh->outcomes_root.len == 0) {
        set_err(err, errlen, "main block %llu's header has no outcomes root", (unsigned long long)mh->height);
        goto end;
    }
    if (digest1(hm, p->anchor_outcome.data, p->anchor_outcome.len, anchor_id, &id_len) != 0 ||
        gl_merkle_fold(mh->hash_suite, anchor_id, id_len, p->outcome_path, p->n_outcome_path, root,
                       &root_len) != 0) {
        set_err(err, errlen, "hashing failed");
        goto end;
    }
    if (root_len != mh->outcomes_root.len || memcmp(root, mh->outcomes_root.data, root_len) != 0) {
        set_err(err, errlen, "anchor outcome does not fold to main block %llu's outcomes root",
                (unsigned long long)mh->height);
        goto end;
    }
    if (copy_name(out->district, p->district) != 0 || copy_name(out->main_chain, mh->chain_id) != 0) {
        set_err(err, errlen, "chain id longer than %d bytes", GL_CHAIN_ID_MAX);
        goto end;
    }
    if (ca_path != NULL && check_signatures(a, ca_path, &out->signatures_verified, err, errlen) != 0)
        goto end;
    out->height = header->height;
    out->anchor_from = a->from_height;
    out->anchor_to = a->to_height;
    out->main_height = mh->height;
    out->main_index = p->main_index;
    rc = 0;
end:
    if (rc != 0)
        memset(out, 0, sizeof *out);
    if (outcome != NULL)
        gridledger__tx_outcome__free_unpacked(outcome, NULL);
    if (mh != NULL)
        gridledger__block_header__free_unpacked(mh, NULL);
    if (payload != NULL)
        gridledger__tx_payload__free_unpacked(payload, NULL);
    if (tx != NULL)
        gridledger__signed_transaction__free_unpacked(tx, NULL);
    if (header != NULL)
        gridledger__block_header__free_unpacked(header, NULL);
    if (p != NULL)
        gridledger__block_proof__free_unpacked(p, NULL);
    return rc;
}
