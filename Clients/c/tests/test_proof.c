/*
 * test_proof.c - no network: gl_verify_proof (Docs/anchoring.md, "Proofs") against proofs
 * built here. The test computes every hash itself with EVP_Digest (header hashes in the
 * district suite, a Merkle tree level by level, the anchor digest, the main block's
 * tx_root and outcomes_root over H_main(serialized TxOutcome)) and signs anchor digests with EVP_DigestSign and the keys of
 * tests/make_test_certs.sh; only gl_verify_proof comes from the library.
 *
 * usage: test_proof DIR   (DIR from tests/make_test_certs.sh). Prints "N passed, N failed".
 */
#include "gridledger.h"
#include "tariff_file.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static const char *dir;

#define MAXN 16
#define HL 32

static void H(const char *suite, const void *a, size_t al, const void *b, size_t bl,
              const void *c, size_t cl, uint8_t out[HL])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    EVP_DigestInit_ex(ctx, strcmp(suite, "sm3") == 0 ? EVP_get_digestbyname("SM3") : EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a, al);
    if (b != NULL)
        EVP_DigestUpdate(ctx, b, bl);
    if (c != NULL)
        EVP_DigestUpdate(ctx, c, cl);
    EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
}

/* A Merkle tree as levels of nodes (level 0 = leaves H(0x00 || id)). */
typedef struct tree {
    uint8_t node[6][MAXN][HL];
    size_t count[6];
    size_t levels;
} tree;

static void build_tree(const char *suite, uint8_t ids[][HL], size_t n, tree *t)
{
    static const uint8_t zero = 0, one = 1;
    for (size_t i = 0; i < n; i++)
        H(suite, &zero, 1, ids[i], HL, NULL, 0, t->node[0][i]);
    t->count[0] = n;
    t->levels = 1;
    while (t->count[t->levels - 1] > 1) {
        size_t l = t->levels, m = t->count[l - 1], k = 0;
        for (size_t i = 0; i < m; i += 2, k++) {
            if (i + 1 < m)
                H(suite, &one, 1, t->node[l - 1][i], HL, t->node[l - 1][i + 1], HL, t->node[l][k]);
            else
                memcpy(t->node[l][k], t->node[l - 1][i], HL);
        }
        t->count[l] = k;
        t->levels++;
    }
}

/* The path of leaf `index`: steps and their pointers (one per level below the root). */
typedef struct path {
    Gridledger__MerkleStep steps[6];
    Gridledger__MerkleStep *ptrs[6];
    size_t n;
} path;

static void build_path(const tree *t, size_t index, path *p)
{
    p->n = 0;
    for (size_t l = 0; l + 1 < t->levels; l++, index /= 2) {
        Gridledger__MerkleStep *s = &p->steps[p->n];
        gridledger__merkle_step__init(s);
        size_t sib = index % 2 == 0 ? index + 1 : index - 1;
        if (sib >= t->count[l]) {
            s->promoted = 1;
        } else {
            s->sibling.data = (uint8_t *)t->node[l][sib];
            s->sibling.len = HL;
            s->sibling_left = sib < index;
        }
        p->ptrs[p->n] = s;
        p->n++;
    }
}

static EVP_PKEY *load_key(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    return k;
}

static size_t load_cert_der(const char *name, uint8_t *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.crt", dir, name);
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int n = x != NULL ? i2d_X509(x, &der) : -1;
    size_t len = 0;
    if (n > 0 && (size_t)n <= cap) {
        memcpy(out, der, (size_t)n);
        len = (size_t)n;
    }
    OPENSSL_free(der);
    X509_free(x);
    if (f != NULL)
        fclose(f);
    return len;
}

/* The anchor digest, computed here from its grammar (Docs/anchoring.md). */
static void digest_of(const Gridledger__Anchor *a, uint8_t out[HL])
{
    uint8_t buf[1024], sum[HL];
    size_t n = 0, dl = strlen(a->district);
    memcpy(buf, "gridledger-anchor/v1", 20);
    n = 20;
    buf[n++] = (uint8_t)(dl >> 8);
    buf[n++] = (uint8_t)dl;
    memcpy(buf + n, a->district, dl);
    n += dl;
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)(a->from_height >> (8 * i));
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)(a->to_height >> (8 * i));
    buf[n++] = 0;
    buf[n++] = (uint8_t)a->last_header_hash.len;
    memcpy(buf + n, a->last_header_hash.data, a->last_header_hash.len);
    n += a->last_header_hash.len;
    buf[n++] = 0;
    buf[n++] = (uint8_t)a->headers_root.len;
    memcpy(buf + n, a->headers_root.data, a->headers_root.len);
    n += a->headers_root.len;
    H("sha256", a->summary.data, a->summary.len, NULL, 0, NULL, 0, sum);
    memcpy(buf + n, sum, HL);
    n += HL;
    H("sha256", buf, n, NULL, 0, NULL, 0, out);
}

/* A district chain of n headers from height `first`, an anchor over all of them, and a
 * main block of n_tx transactions with the anchor at anchor_index. */
typedef struct built {
    const char *suite, *main_suite;
    uint64_t first;
    size_t n;
    uint8_t headers[MAXN][256];
    size_t header_len[MAXN];
    uint8_t hashes[MAXN][HL];
    tree htree;
    Gridledger__Anchor anchor;
    Gridledger__AnchorSignature sigs[4];
    Gridledger__AnchorSignature *sig_ptrs[4];
    uint8_t sig_der[4][128], cert_der[4][2048];
    uint8_t payload[8192], anchor_tx[8192];
    size_t payload_len, anchor_tx_len;
    uint8_t ids[MAXN][HL];
    size_t n_tx, anchor_index;
    tree ttree;
    uint8_t outcomes[MAXN][64];   /* serialized TxOutcome, block order */
    size_t outcome_len[MAXN];
    uint8_t outcome_leaves[MAXN][HL]; /* H_main(outcome bytes) */
    uint32_t anchor_code;          /* the anchor's outcome code (0 accepted) */
    tree otree;
    uint8_t main_header[512];
    size_t main_len;
    path hp, tp, op;
} built;

static const uint8_t summary[] = {0x08, 0x03};

/* The block's outcomes (the anchor's with b->anchor_code) and the main header over the
 * tx tree and the outcome tree. */
static void build_main(built *b)
{
    static char *accounts[] = {"acc1", "acc2"};
    for (size_t i = 0; i < b->n_tx; i++) {
        Gridledger__TxOutcome o;
        gridledger__tx_outcome__init(&o);
        if (i == b->anchor_index) {
            o.code = b->anchor_code;
            o.message = b->anchor_code != 0 ? "range does not follow" : "";
            o.accounts = accounts;
            o.n_accounts = 2;
        } else {
            o.readings_accepted = (uint32_t)i + 1;
        }
        b->outcome_len[i] = gridledger__tx_outcome__pack(&o, b->outcomes[i]);
        H(b->main_suite, b->outcomes[i], b->outcome_len[i], NULL, 0, NULL, 0, b->outcome_leaves[i]);
    }
    build_tree(b->main_suite, b->outcome_leaves, b->n_tx, &b->otree);
    build_tree(b->main_suite, b->ids, b->n_tx, &b->ttree);
    Gridledger__BlockHeader m;
    gridledger__block_header__init(&m);
    m.chain_id = "main";
    m.height = 42;
    m.timestamp_ms = 9;
    m.tx_root.data = b->ttree.node[b->ttree.levels - 1][0];
    m.tx_root.len = HL;
    m.proposer = "cloud1";
    m.tx_count = (uint32_t)b->n_tx;
    m.hash_suite = (char *)b->main_suite;
    m.outcomes_root.data = b->otree.node[b->otree.levels - 1][0];
    m.outcomes_root.len = HL;
    b->main_len = gridledger__block_header__pack(&m, b->main_header);
}

/* Signers: names of certificates in DIR whose keys sign the digest (NULL-terminated). */
static void build(built *b, const char *suite, const char *main_suite, uint64_t first, size_t n,
                  size_t n_tx, size_t anchor_index, const char *const *signers)
{
    memset(b, 0, sizeof *b);
    b->suite = suite;
    b->main_suite = main_suite;
    b->first = first;
    b->n = n;
    uint8_t prev[HL], empty_root[HL], state[HL];
    H(suite, "", 0, NULL, 0, NULL, 0, empty_root);
    for (size_t i = 0; i < n; i++) {
        Gridledger__BlockHeader h;
        gridledger__block_header__init(&h);
        h.chain_id = "d1";
        h.height = first + i;
        if (i > 0) {
            h.previous_hash.data = prev;
            h.previous_hash.len = HL;
        }
        h.timestamp_ms = 1700000000000LL + (int64_t)i;
        h.tx_root.data = empty_root;
        h.tx_root.len = HL;
        H(suite, "s", 1, &i, sizeof i, NULL, 0, state);
        h.state_root.data = state;
        h.state_root.len = HL;
        h.proposer = "node1";
        h.hash_suite = (char *)suite;
        b->header_len[i] = gridledger__block_header__pack(&h, b->headers[i]);
        H(suite, b->headers[i], b->header_len[i], NULL, 0, NULL, 0, b->hashes[i]);
        memcpy(prev, b->hashes[i], HL);
    }
    build_tree(suite, b->hashes, n, &b->htree);
    Gridledger__Anchor *a = &b->anchor;
    gridledger__anchor__init(a);
    a->district = "d1";
    a->from_height = first;
    a->to_height = first + n - 1;
    a->last_header_hash.data = b->hashes[n - 1];
    a->last_header_hash.len = HL;
    a->headers_root.data = b->htree.node[b->htree.levels - 1][0];
    a->headers_root.len = HL;
    a->hash_suite = (char *)suite;
    a->summary.data = (uint8_t *)summary;
    a->summary.len = sizeof summary;
    uint8_t dg[HL];
    digest_of(a, dg);
    for (size_t k = 0; signers != NULL && signers[k] != NULL; k++) {
        EVP_PKEY *key = load_key(signers[k]);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t sl = sizeof b->sig_der[k];
        CHECK(key != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(ctx, b->sig_der[k], &sl, dg, sizeof dg) == 1);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(key);
        gridledger__anchor_signature__init(&b->sigs[k]);
        b->sigs[k].signature.data = b->sig_der[k];
        b->sigs[k].signature.len = sl;
        b->sigs[k].certificate.data = b->cert_der[k];
        b->sigs[k].certificate.len = load_cert_der(signers[k], b->cert_der[k], sizeof b->cert_der[k]);
        b->sig_ptrs[k] = &b->sigs[k];
        a->n_signatures = k + 1;
    }
    a->signatures = b->sig_ptrs;
    Gridledger__TxPayload p;
    gridledger__tx_payload__init(&p);
    p.chain_id = "main";
    p.created_ms = 5;
    p.nonce = "n";
    p.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_ANCHOR;
    p.anchor = a;
    b->payload_len = gridledger__tx_payload__pack(&p, b->payload);
    Gridledger__SignedTransaction tx;
    gridledger__signed_transaction__init(&tx);
    tx.payload.data = b->payload;
    tx.payload.len = b->payload_len;
    tx.signature.data = (uint8_t *)"sig";
    tx.signature.len = 3;
    b->anchor_tx_len = gridledger__signed_transaction__pack(&tx, b->anchor_tx);
    b->n_tx = n_tx;
    b->anchor_index = anchor_index;
    for (size_t i = 0; i < n_tx; i++) {
        char other[16];
        int l = snprintf(other, sizeof other, "other%zu", i);
        H("sha256", other, (size_t)l, NULL, 0, NULL, 0, b->ids[i]);
    }
    H("sha256", b->payload, b->payload_len, NULL, 0, NULL, 0, b->ids[anchor_index]);
    build_main(b);
}

/* Fills *p (pointing into b) for block `height`. */
static void proof_of(built *b, uint64_t height, Gridledger__BlockProof *p)
{
    size_t i = (size_t)(height - b->first);
    gridledger__block_proof__init(p);
    p->district = "d1";
    p->height = height;
    p->header.data = b->headers[i];
    p->header.len = b->header_len[i];
    build_path(&b->htree, i, &b->hp);
    p->header_path = b->hp.ptrs;
    p->n_header_path = b->hp.n;
    p->anchor_transaction.data = b->anchor_tx;
    p->anchor_transaction.len = b->anchor_tx_len;
    build_path(&b->ttree, b->anchor_index, &b->tp);
    p->tx_path = b->tp.ptrs;
    p->n_tx_path = b->tp.n;
    p->main_header.data = b->main_header;
    p->main_header.len = b->main_len;
    p->main_index = (uint32_t)b->anchor_index;
    p->anchor_outcome.data = b->outcomes[b->anchor_index];
    p->anchor_outcome.len = b->outcome_len[b->anchor_index];
    build_path(&b->otree, b->anchor_index, &b->op);
    p->outcome_path = b->op.ptrs;
    p->n_outcome_path = b->op.n;
}

/* Packs and verifies: the return of gl_verify_proof; err gets the reason. */
static int verify(const Gridledger__BlockProof *p, const char *ca, gl_proof_result *r, char *err,
                  size_t errlen)
{
    static uint8_t buf[32768];
    size_t n = gridledger__block_proof__pack(p, buf);
    return gl_verify_proof(buf, n, ca, r, err, errlen);
}

static built b; /* large: static */

/* Every height of a 5-header range against a 5-transaction main block: paths with
 * promoted steps; the result reports what the proof establishes. */
static void test_every_height(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    uint8_t mh[HL];
    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    H("sha256", b.main_header, b.main_len, NULL, 0, NULL, 0, mh);
    for (uint64_t h = 1; h <= 5; h++) {
        proof_of(&b, h, &p);
        int rc = verify(&p, NULL, &r, err, sizeof err);
        CHECK(rc == 0);
        if (rc != 0) {
            fprintf(stderr, "  height %llu: %s\n", (unsigned long long)h, err);
            continue;
        }
        CHECK(strcmp(r.district, "d1") == 0 && r.height == h);
        CHECK(r.header_hash_len == HL && memcmp(r.header_hash, b.hashes[h - 1], HL) == 0);
        CHECK(r.anchor_from == 1 && r.anchor_to == 5);
        CHECK(strcmp(r.main_chain, "main") == 0 && r.main_height == 42 && r.main_index == 2);
        CHECK(r.main_block_hash_len == HL && memcmp(r.main_block_hash, mh, HL) == 0);
        CHECK(r.signatures_verified == 0);
    }
    proof_of(&b, 5, &p);
    CHECK(p.n_header_path == 3 && p.header_path[0]->promoted && p.header_path[1]->promoted);
    build(&b, "sha256", "sha256", 10, 3, 7, 6, NULL);
    proof_of(&b, 11, &p);
    CHECK(p.tx_path[0]->promoted);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0 && r.main_index == 6);
}

/* A flipped byte of the district header fails: the proof binds the exact bytes. */
static void test_flipped_header(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    uint8_t copy[256];
    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    proof_of(&b, 3, &p);
    memcpy(copy, p.header.data, p.header.len);
    copy[10] ^= 1; /* inside previous_hash */
    p.header.data = copy;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1);
    CHECK(strstr(err, "does not fold to the anchored headers root") != NULL);
    CHECK(r.height == 0 && r.header_hash_len == 0); /* zeroed on failure */
    copy[10] ^= 1;
    copy[5] ^= 1; /* the height */
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "the proof says 3") != NULL);
}

/* Wrong paths fail: another leaf's path, a flipped side, a changed sibling, a missing step. */
static void test_wrong_paths(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    path other;
    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    proof_of(&b, 2, &p);
    build_path(&b.htree, 2, &other);
    p.header_path = other.ptrs; /* another leaf's path: another shape */
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "header path is not the path of block 2 in the anchored range 1...5") != NULL);
    proof_of(&b, 2, &p);
    p.header_path[0]->sibling_left = !p.header_path[0]->sibling_left;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "header path is not the path") != NULL);
    proof_of(&b, 2, &p);
    uint8_t hsib[HL];
    memcpy(hsib, p.header_path[1]->sibling.data, HL);
    hsib[3] ^= 0x01; /* the right shape, a wrong hash */
    p.header_path[1]->sibling.data = hsib;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "headers root") != NULL);
    proof_of(&b, 2, &p);
    uint8_t sib[HL];
    memcpy(sib, p.tx_path[1]->sibling.data, HL);
    sib[0] ^= 0x80;
    p.tx_path[1]->sibling.data = sib;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "transaction root") != NULL);
    proof_of(&b, 2, &p);
    p.n_tx_path--;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "transaction path is not the path of index 2 in main block 42's 5 transactions") != NULL);
    proof_of(&b, 2, &p);
    p.height = 9;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1);
    proof_of(&b, 2, &p);
    p.main_header.data = b.headers[0]; /* a header of another chain */
    p.main_header.len = b.header_len[0];
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "anchor is for chain main") != NULL);
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    CHECK(gl_verify_proof(junk, sizeof junk, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "does not decode") != NULL);
}

/* Path shape binding: the path of index 0 presented as index 3 (or beyond tx_count), an
 * extra or a missing promoted step (the fold does not change), a promoted step with a
 * sibling, a sibling of another length. */
static void test_path_shape(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    uint8_t root[GL_HASH_MAX];
    size_t root_len = 0;
    build(&b, "sha256", "sha256", 1, 5, 5, 0, NULL);
    proof_of(&b, 2, &p);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0 && r.main_index == 0);
    p.main_index = 3;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "transaction path is not the path of index 3") != NULL);
    p.main_index = 5;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "transaction path is not the path of index 5") != NULL);

    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    proof_of(&b, 5, &p);
    CHECK(p.n_header_path == 3 && p.header_path[0]->promoted && p.header_path[1]->promoted);
    p.header_path++; /* a promoted step missing: folds the same */
    p.n_header_path--;
    CHECK(gl_merkle_fold("sha256", b.hashes[4], HL, p.header_path, p.n_header_path, root, &root_len) == 0 &&
          root_len == HL && memcmp(root, b.anchor.headers_root.data, HL) == 0);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "header path is not the path of block 5") != NULL);
    Gridledger__MerkleStep extra;
    gridledger__merkle_step__init(&extra);
    extra.promoted = 1;
    Gridledger__MerkleStep *more[8];
    proof_of(&b, 5, &p);
    memcpy(more, p.header_path, p.n_header_path * sizeof more[0]);
    more[p.n_header_path] = &extra; /* an extra promoted step */
    p.header_path = more;
    p.n_header_path++;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "header path is not the path of block 5") != NULL);
    proof_of(&b, 2, &p);
    memcpy(more, p.tx_path, p.n_tx_path * sizeof more[0]);
    more[p.n_tx_path] = &extra;
    p.tx_path = more;
    p.n_tx_path++;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "transaction path is not the path") != NULL);
    proof_of(&b, 2, &p);
    more[0] = &extra;
    memcpy(more + 1, p.outcome_path, p.n_outcome_path * sizeof more[0]);
    p.outcome_path = more;
    p.n_outcome_path++;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "outcome path is not the path") != NULL);
    /* A promoted step carrying a sibling; a sibling one byte short. */
    uint8_t junk[HL] = {0};
    proof_of(&b, 5, &p);
    p.header_path[0]->sibling.data = junk;
    p.header_path[0]->sibling.len = HL;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "header path is not the path") != NULL);
    proof_of(&b, 2, &p);
    p.tx_path[0]->sibling.len = HL - 1;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "transaction path is not the path") != NULL);
}

/* The anchor's outcome: refused (code 9) with a valid path fails; a wrong outcome path,
 * another outcome, no outcomes root, an outcome that does not decode fail. */
static void test_anchor_outcome(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    uint8_t root[GL_HASH_MAX], leaf[HL];
    size_t root_len = 0;
    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    b.anchor_code = 9;
    build_main(&b);
    proof_of(&b, 3, &p);
    H("sha256", p.anchor_outcome.data, p.anchor_outcome.len, NULL, 0, NULL, 0, leaf);
    CHECK(gl_merkle_fold("sha256", leaf, HL, p.outcome_path, p.n_outcome_path, root, &root_len) == 0 &&
          memcmp(root, b.otree.node[b.otree.levels - 1][0], HL) == 0); /* the path is valid */
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "the main chain refused this anchor (outcome code 9: range does not follow)") != NULL);

    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    proof_of(&b, 3, &p);
    uint8_t sib[HL];
    memcpy(sib, p.outcome_path[0]->sibling.data, HL);
    sib[7] ^= 0x40;
    p.outcome_path[0]->sibling.data = sib;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "anchor outcome does not fold to main block 42's outcomes root") != NULL);
    path other;
    proof_of(&b, 3, &p);
    build_path(&b.otree, 1, &other); /* another index's path */
    p.outcome_path = other.ptrs;
    p.n_outcome_path = other.n;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 &&
          strstr(err, "outcome path is not the path of index 2 in main block 42's 5 outcomes") != NULL);
    proof_of(&b, 3, &p);
    p.anchor_outcome.data = b.outcomes[1]; /* another transaction's (accepted) outcome */
    p.anchor_outcome.len = b.outcome_len[1];
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "outcomes root") != NULL);
    proof_of(&b, 3, &p);
    p.anchor_outcome.data = NULL; /* no outcome, no path: the old proof shape */
    p.anchor_outcome.len = 0;
    p.n_outcome_path = 0;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1);
    uint8_t bad[2] = {0xff, 0xff};
    proof_of(&b, 3, &p);
    p.anchor_outcome.data = bad;
    p.anchor_outcome.len = sizeof bad;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "anchor outcome does not decode") != NULL);
    /* A main header without an outcomes root. */
    Gridledger__BlockHeader *m = gridledger__block_header__unpack(NULL, b.main_len, b.main_header);
    uint8_t stripped[512];
    CHECK(m != NULL);
    if (m == NULL)
        return;
    m->outcomes_root.len = 0;
    size_t sl = gridledger__block_header__pack(m, stripped);
    gridledger__block_header__free_unpacked(m, NULL);
    proof_of(&b, 3, &p);
    p.main_header.data = stripped;
    p.main_header.len = sl;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "has no outcomes root") != NULL);
    /* sm3 main chain, the anchor last at an odd position: the outcome path has a promoted step. */
    build(&b, "sha256", "sm3", 1, 3, 7, 6, NULL);
    proof_of(&b, 2, &p);
    CHECK(p.n_outcome_path == 3 && p.outcome_path[0]->promoted);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0 && r.main_index == 6);
    build(&b, "sha256", "sha256", 1, 1, 1, 0, NULL);
    proof_of(&b, 1, &p);
    CHECK(p.n_header_path == 0 && p.n_tx_path == 0 && p.n_outcome_path == 0);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0);
}

/* The sm3 suite: district headers and their tree in SM3 (GB/T 32905); the anchor's id
 * stays SHA-256; a main chain on sm3 too. */
static void test_sm3(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[300] = "";
    uint8_t sha[HL], copy[256];
    build(&b, "sm3", "sha256", 7, 3, 4, 1, NULL);
    proof_of(&b, 8, &p);
    int rc = verify(&p, NULL, &r, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err);
    H("sha256", p.header.data, p.header.len, NULL, 0, NULL, 0, sha);
    CHECK(memcmp(r.header_hash, b.hashes[1], HL) == 0 && memcmp(r.header_hash, sha, HL) != 0);
    memcpy(copy, p.header.data, p.header.len);
    copy[10] ^= 1;
    p.header.data = copy;
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1);
    build(&b, "sm3", "sm3", 1, 4, 3, 2, NULL);
    proof_of(&b, 4, &p);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0);
    H("sm3", b.main_header, b.main_len, NULL, 0, NULL, 0, sha);
    CHECK(memcmp(r.main_block_hash, sha, HL) == 0);
    build(&b, "md5", "sha256", 1, 2, 2, 0, NULL);
    proof_of(&b, 1, &p);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == -1 && strstr(err, "unknown hash suite") != NULL);
}

/* With the CA: ECDSA P-256 over SHA-256(anchor digest) by distinct d1 node certificates
 * chaining to the CA; any other signer fails. */
static void test_signatures(void)
{
    Gridledger__BlockProof p;
    gl_proof_result r;
    char err[400] = "", ca[512];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    static const char *const two[] = {"dn1", "dn2", NULL};
    build(&b, "sha256", "sha256", 1, 5, 5, 2, two);
    proof_of(&b, 3, &p);
    int rc = verify(&p, ca, &r, err, sizeof err);
    CHECK(rc == 0 && r.signatures_verified == 2);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0 && r.signatures_verified == 0);
    uint8_t digest[32], mine[HL];
    CHECK(gl_anchor_digest(&b.anchor, digest) == 0);
    digest_of(&b.anchor, mine);
    CHECK(memcmp(digest, mine, 32) == 0);

    static const struct { const char *signer; const char *why; } bad[] = {
        {"other/fn1", "does not chain to the CA"},
        {"d2n1", "district (L) is d2"},
        {"col1", "role (OU) is collector"},
        {"dn1", "signed twice"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *signers[] = {"dn1", bad[k].signer, NULL};
        build(&b, "sha256", "sha256", 1, 5, 5, 2, signers);
        proof_of(&b, 3, &p);
        rc = verify(&p, ca, &r, err, sizeof err);
        CHECK(rc == -1 && strstr(err, bad[k].why) != NULL);
        if (rc != -1 || strstr(err, bad[k].why) == NULL)
            fprintf(stderr, "  %s: %s\n", bad[k].signer, err);
    }
    build(&b, "sha256", "sha256", 1, 5, 5, 2, NULL);
    proof_of(&b, 3, &p);
    CHECK(verify(&p, ca, &r, err, sizeof err) == -1 && strstr(err, "no signature") != NULL);
    /* A signature over another digest: signed for the range 1..5, claimed for 1..4. */
    static const char *const one[] = {"dn3", NULL};
    build(&b, "sha256", "sha256", 1, 5, 5, 2, one);
    built *b2 = malloc(sizeof *b2);
    build(b2, "sha256", "sha256", 1, 4, 5, 2, NULL);
    b2->anchor.signatures = b.sig_ptrs;
    b2->anchor.n_signatures = 1;
    /* rebuild b2's anchor transaction and main block around the borrowed signature */
    Gridledger__TxPayload pl;
    gridledger__tx_payload__init(&pl);
    pl.chain_id = "main";
    pl.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_ANCHOR;
    pl.anchor = &b2->anchor;
    b2->payload_len = gridledger__tx_payload__pack(&pl, b2->payload);
    Gridledger__SignedTransaction tx;
    gridledger__signed_transaction__init(&tx);
    tx.payload.data = b2->payload;
    tx.payload.len = b2->payload_len;
    b2->anchor_tx_len = gridledger__signed_transaction__pack(&tx, b2->anchor_tx);
    H("sha256", b2->payload, b2->payload_len, NULL, 0, NULL, 0, b2->ids[2]);
    build_main(b2);
    proof_of(b2, 2, &p);
    CHECK(verify(&p, NULL, &r, err, sizeof err) == 0);
    CHECK(verify(&p, ca, &r, err, sizeof err) == -1 && strstr(err, "anchor digest") != NULL);
    free(b2);
}

/* The line-based tariff file of gridctl param tariff (tariff_file.h). */
static void test_tariff_file(void)
{
    static const char good[] =
        "# peak/valley tariff\n"
        "tariff_id T1\n"
        "utc_offset_minutes 480\r\n"
        "period sharp 15000\nperiod peak 12000\nperiod flat 8000\nperiod valley 4000\n"
        "all 1-12 0-23 2   # flat by default\n"
        "all 1-12 8-10 1\n"
        "weekday 7-8 11 0\n"
        "weekend 1-12 0-6 3\n"
        "cycle annual\n"
        "tier_limits 20000 40000\n"
        "tier_surcharges 500 3000\n"
        "fixed_charge_fen 100\n";
    static gl_tariff t;
    char err[300] = "";
    FILE *f = fmemopen((void *)good, sizeof good - 1, "r");
    int rc = gl_tariff_read(f, "t.txt", &t, err, sizeof err);
    fclose(f);
    CHECK(rc == GL_TARIFF_OK);
    if (rc != GL_TARIFF_OK) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(strcmp(t.msg.tariff_id, "T1") == 0 && t.msg.utc_offset_minutes == 480);
    CHECK(t.msg.n_periods == 4 && strcmp(t.msg.periods[3]->name, "valley") == 0 &&
          t.msg.periods[0]->base_price == 15000);
    CHECK(t.msg.weekday_schedule.len == 288 && t.msg.weekend_schedule.len == 288);
    CHECK(t.msg.weekday_schedule.data[0] == 2 && t.msg.weekday_schedule.data[8] == 1 &&
          t.msg.weekday_schedule.data[6 * 24 + 11] == 0 && t.msg.weekday_schedule.data[7 * 24 + 11] == 0 &&
          t.msg.weekday_schedule.data[8 * 24 + 11] == 2);
    CHECK(t.msg.weekend_schedule.data[0] == 3 && t.msg.weekend_schedule.data[6 * 24 + 11] == 2);
    CHECK(t.msg.cycle == GRIDLEDGER__BILLING_CYCLE__BILLING_CYCLE_ANNUAL);
    CHECK(t.msg.n_tier_limits == 2 && t.msg.tier_limits[1] == 40000 && t.msg.n_tier_surcharges == 2 &&
          t.msg.tier_surcharges[0] == 500 && t.msg.fixed_charge_fen == 100);
    uint8_t buf[2048];
    size_t n = gridledger__tariff__pack(&t.msg, buf);
    Gridledger__Tariff *back = gridledger__tariff__unpack(NULL, n, buf);
    CHECK(back != NULL && back->n_periods == 4 && back->weekday_schedule.len == 288);
    if (back != NULL)
        gridledger__tariff__free_unpacked(back, NULL);

    static const struct { const char *text; const char *why; } bad[] = {
        {"tariff_id T\nperiod p 1\n", "weekday schedule: month 1 hour 0 is not set"},
        {"tariff_id T\nperiod p 1\nall 1-12 0-23 1\n", "names period 1 of 1"},
        {"period p 1\nall 1-12 0-23 0\n", "no tariff_id"},
        {"tariff_id T\ntariff_id U\n", "t.txt:2: tariff_id given twice"},
        {"tariff_id T\nall 13 0 0\n", "t.txt:2: all needs MONTHS"},
        {"tariff_id T\nperiod p x\n", "t.txt:2: period needs NAME PRICE"},
        {"tariff_id T\nperiod p 1\nall 1-12 0-23 0\ntier_limits 5 3\n", "t.txt:4: tier limits must ascend"},
        {"tariff_id T\nperiod p 1\nall 1-12 0-23 0\ntier_limits 5\n", "1 tier limits but 0 tier surcharges"},
        {"tariff_id T\nfrob 1\n", "t.txt:2: unknown entry frob"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        f = fmemopen((void *)bad[k].text, strlen(bad[k].text), "r");
        rc = gl_tariff_read(f, "t.txt", &t, err, sizeof err);
        fclose(f);
        CHECK(rc == GL_TARIFF_EDATA && strstr(err, bad[k].why) != NULL);
        if (rc != GL_TARIFF_EDATA || strstr(err, bad[k].why) == NULL)
            fprintf(stderr, "  case %zu: %s\n", k, err);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_proof DIR\n");
        return 64;
    }
    dir = argv[1];
    run("proof: every height of an anchored range verifies (promoted steps)", test_every_height);
    run("proof: a flipped district header byte fails", test_flipped_header);
    run("proof: wrong Merkle paths, heights and main headers fail", test_wrong_paths);
    run("proof: path shapes bind the leaf index (main_index, promoted steps, sibling lengths)",
        test_path_shape);
    run("proof: the anchor's outcome (refused, wrong path, no outcomes root)", test_anchor_outcome);
    run("proof: sm3 district (and main) hash suite", test_sm3);
    run("proof: anchor signatures against the CA (role, district, issuer, distinct)", test_signatures);
    run("tariff file: fields, schedules, tiers; errors with file:line", test_tariff_file);
    return check_report();
}
