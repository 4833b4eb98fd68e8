/*
 * test_chain.c - no network: readings CSV parsing (readings_csv.h), transaction signing
 * and ids (Docs/wire-protocol.md, "Submitting"), block hash checks. Signatures are checked
 * independently of the library: EVP_DigestVerify with the public key read from the
 * certificate file, and SHA256() for the transaction id.
 *
 * usage: test_chain DIR   (DIR from tests/make_test_certs.sh). Prints "N passed, N failed".
 */
#include "gridledger.h"
#include "readings_csv.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

static const char *dir;

static const char header[] =
    "meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,energy_valley,"
    "energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,current_a_ma,current_b_ma,"
    "current_c_ma,active_power_w,reactive_power_var,events\n";

/* Parses `body` (after the standard header unless with_header is 0). */
static int parse(const char *body, int with_header, gl_csv_readings *out, char *err, size_t errlen)
{
    size_t hl = with_header ? strlen(header) : 0, bl = strlen(body);
    char *text = malloc(hl + bl + 1);
    if (text == NULL)
        return GL_CSV_ENOMEM;
    memcpy(text, header, hl);
    memcpy(text + hl, body, bl + 1);
    FILE *f = fmemopen(text, hl + bl, "r");
    int rc = f != NULL ? gl_csv_read_readings(f, "in.csv", out, err, errlen) : GL_CSV_EIO;
    if (f != NULL)
        fclose(f);
    free(text);
    return rc;
}

/* CSV: every column lands in its Reading field; three-phase, single-phase and no-phase
 * rows; CRLF, blank lines, a quoted meter id, spaces around fields; the largest
 * timestamp the node takes (10^14 - 1). */
static void test_csv_valid(void)
{
    gl_csv_readings rs = {NULL, 0, 0};
    char err[600] = "";
    const char *body =
        "m-001,1700000000000,123456,10,20,30,40,5,2200,2210,2190,1500,-1600,1700,3300,-120,1\r\n"
        "\n"
        "  \"m.two_2\" , 1700000900000 ,0,0,0,0,0,0,2301,,,-42,,,0,0,63\n"
        "m3,99999999999999,18446744073709551615,0,0,0,0,0,,,,,,,-9223372036854775808,9223372036854775807,0";
    int rc = parse(body, 1, &rs, err, sizeof err);
    CHECK(rc == GL_CSV_OK);
    if (rc != GL_CSV_OK) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(rs.count == 3);
    const gl_csv_reading *a = &rs.items[0], *b = &rs.items[1], *c = &rs.items[2];
    CHECK(strcmp(a->meter_id, "m-001") == 0 && a->timestamp_ms == 1700000000000LL);
    CHECK(a->energy_total == 123456 && a->energy_sharp == 10 && a->energy_peak == 20 &&
          a->energy_flat == 30 && a->energy_valley == 40 && a->energy_reverse == 5);
    CHECK(a->n_voltage == 3 && a->voltage_dv[0] == 2200 && a->voltage_dv[1] == 2210 &&
          a->voltage_dv[2] == 2190);
    CHECK(a->n_current == 3 && a->current_ma[0] == 1500 && a->current_ma[1] == -1600 &&
          a->current_ma[2] == 1700);
    CHECK(a->active_power_w == 3300 && a->reactive_power_var == -120 && a->events == 1);
    CHECK(a->line == 2);
    CHECK(strcmp(b->meter_id, "m.two_2") == 0 && b->timestamp_ms == 1700000900000LL);
    CHECK(b->n_voltage == 1 && b->voltage_dv[0] == 2301 && b->n_current == 1 && b->current_ma[0] == -42);
    CHECK(b->events == 63 && b->line == 4);
    CHECK(c->timestamp_ms == 99999999999999LL);
    CHECK(c->energy_total == UINT64_MAX && c->n_voltage == 0 && c->n_current == 0);
    CHECK(c->active_power_w == INT64_MIN && c->reactive_power_var == INT64_MAX);

    /* To protobuf and back: the Reading carries the same values. */
    Gridledger__Reading pr;
    gl_csv_reading_to_proto(a, &pr);
    size_t len = gridledger__reading__get_packed_size(&pr);
    uint8_t *buf = malloc(len);
    CHECK(buf != NULL);
    if (buf != NULL) {
        gridledger__reading__pack(&pr, buf);
        Gridledger__Reading *back = gridledger__reading__unpack(NULL, len, buf);
        CHECK(back != NULL);
        if (back != NULL) {
            CHECK(strcmp(back->meter_id, "m-001") == 0 && back->timestamp_ms == 1700000000000LL);
            CHECK(back->n_voltage_dv == 3 && back->voltage_dv[2] == 2190);
            CHECK(back->n_current_ma == 3 && back->current_ma[1] == -1600);
            CHECK(back->reactive_power_var == -120 && back->events == 1);
            gridledger__reading__free_unpacked(back, NULL);
        }
        free(buf);
    }
    gl_csv_readings_free(&rs);
}

/* CSV: a UTF-8 BOM before the header, and a header with no rows (count 0). */
static void test_csv_bom_and_empty(void)
{
    gl_csv_readings rs = {NULL, 0, 0};
    char err[600];
    char text[1024];
    snprintf(text, sizeof text, "\xef\xbb\xbf%s", header);
    CHECK(parse(text, 0, &rs, err, sizeof err) == GL_CSV_OK && rs.count == 0);
    gl_csv_readings_free(&rs);
    CHECK(parse("", 0, &rs, err, sizeof err) == GL_CSV_EDATA);
    CHECK(strstr(err, "in.csv:1: no header row") == err);
}

/* CSV: every bad field is refused with "file:line: reason", and nothing is returned. */
static void test_csv_errors(void)
{
    static const struct {
        const char *body;
        const char *want; /* prefix "in.csv:LINE: " plus a part of the reason */
    } cases[] = {
        {"m1,1,1,0,0,0,0,0,,,,,,,0,0,0\nm2,2,x,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:3: energy_total \"x\" is not"},
        {"m1,1,-1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: energy_total \"-1\" is not an unsigned"},
        {"m1,1,18446744073709551616,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: energy_total 18446744073709551616 is out of range"},
        {"m1,1,,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: energy_total is empty"},
        {",1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id is empty"},
        {"m1,-5,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: timestamp_ms -5 is out of range"},
        {"m1,0,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: timestamp_ms 0 is out of range (1 .. 99999999999999)"},
        {"m1,100000000000000,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: timestamp_ms 100000000000000 is out of range"},
        {"m 1,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id: byte 0x20 at position 2 is not in [A-Za-z0-9._-]"},
        {"\"m\"\"1\",1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id \"m\"1\": character '\"' is not in"},
        {"m/1,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id \"m/1\": character '/' is not in"},
        {"m12345678901234567890123456789012345678901234567890123456789012345,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id is longer than 64"},
        {"m1,1.5,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: timestamp_ms \"1.5\" is not"},
        {"m1,1,1,0,0,0,0,0,,2200,,,,,0,0,0\n", "in.csv:2: voltage_a_dv, voltage_b_dv, voltage_c_dv: give phase A only"},
        {"m1,1,1,0,0,0,0,0,2200,2200,,,,,0,0,0\n", "in.csv:2: voltage_a_dv, voltage_b_dv, voltage_c_dv: give phase A only or all three phases (got AB)"},
        {"m1,1,1,0,0,0,0,0,4294967296,,,,,,0,0,0\n", "in.csv:2: voltage_a_dv 4294967296 is out of range"},
        {"m1,1,1,0,0,0,0,0,,,,2147483648,,,0,0,0\n", "in.csv:2: current_a_ma 2147483648 is out of range"},
        {"m1,1,1,0,0,0,0,0,,,,,1,1,0,0,0\n", "in.csv:2: current_a_ma, current_b_ma, current_c_ma: give"},
        {"m1,1,1,0,0,0,0,0,,,,,,,0,0,64\n", "in.csv:2: events 64 has unknown bits 0x40"},
        {"m1,1,1,0,0,0,0,0,,,,,,,0,0\n", "in.csv:2: 16 fields, expected 17"},
        {"m1,1,1,0,0,0,0,0,,,,,,,0,0,0,9\n", "in.csv:2: more than 17 fields"},
        {"\"m1,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: field 1: unterminated quoted field"},
        {"\"m1\"x,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: field 1: characters after the closing quote"},
        {"m\"1,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: field 1: quote inside"},
        {"m\x01,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id: byte 0x01 at position 2"},
        {"m\xc3\xa9,1,1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: meter_id: byte 0xc3 at position 2"},
        {"m1,1,+1,0,0,0,0,0,,,,,,,0,0,0\n", "in.csv:2: energy_total \"+1\" is not"},
        {"m1,1,1,0,0,0,0,0,,,,,,,0,0,\n", "in.csv:2: events is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gl_csv_readings rs = {NULL, 0, 0};
        char err[600] = "";
        int rc = parse(cases[i].body, 1, &rs, err, sizeof err);
        if (rc != GL_CSV_EDATA || strstr(err, cases[i].want) != err) {
            fprintf(stderr, "  case %zu: rc=%d err=\"%s\", want \"%s...\"\n", i, rc, err, cases[i].want);
            current_failed = 1;
        }
        CHECK(rs.items == NULL && rs.count == 0);
    }
    /* Header problems. */
    gl_csv_readings rs = {NULL, 0, 0};
    char err[600];
    CHECK(parse("meter_id,timestamp_ms\n", 0, &rs, err, sizeof err) == GL_CSV_EDATA);
    CHECK(strstr(err, "in.csv:1: header has 2 fields, expected 17") == err);
    CHECK(parse("meter,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,energy_valley,"
                "energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,current_a_ma,current_b_ma,"
                "current_c_ma,active_power_w,reactive_power_var,events\n", 0, &rs, err, sizeof err) == GL_CSV_EDATA);
    CHECK(strstr(err, "in.csv:1: header field 1 is \"meter\", expected \"meter_id\"") == err);
    /* A NUL byte inside a line. */
    static const char nul[] = "m1,1,1,0,0,0,0,0,,,,,,,0,0,0\nm\0,1,1,0,0,0,0,0,,,,,,,0,0,0\n";
    size_t hl = strlen(header);
    char buf[512];
    memcpy(buf, header, hl);
    memcpy(buf + hl, nul, sizeof nul - 1);
    FILE *f = fmemopen(buf, hl + sizeof nul - 1, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(gl_csv_read_readings(f, "in.csv", &rs, err, sizeof err) == GL_CSV_EDATA);
        CHECK(strstr(err, "in.csv:3: NUL byte") == err);
        fclose(f);
    }
}

static char path_buf[4][600];

static const char *path(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", dir, name);
    return path_buf[slot];
}

/* Independent check: EVP_DigestVerify (SHA-256) with the key of the PEM certificate file. */
static int verify_with_cert_file(const char *cert_path, const uint8_t *data, size_t len,
                                 const uint8_t *sig, size_t siglen)
{
    FILE *f = fopen(cert_path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = x != NULL ? X509_get_pubkey(x) : NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = k != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    X509_free(x);
    if (f != NULL)
        fclose(f);
    return ok;
}

/* DER of the first certificate of a PEM file (malloc'd). */
static uint8_t *cert_der(const char *cert_path, size_t *len)
{
    FILE *f = fopen(cert_path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL, *copy = NULL;
    int n = x != NULL ? i2d_X509(x, &der) : -1;
    if (n > 0 && (copy = malloc((size_t)n)) != NULL) {
        memcpy(copy, der, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(der);
    X509_free(x);
    if (f != NULL)
        fclose(f);
    return copy;
}

/* Builds a one-reading payload. */
static void sample_payload(Gridledger__TxPayload *p, Gridledger__ReadingBatch *b,
                           Gridledger__Reading *r, Gridledger__Reading **rp)
{
    static uint32_t v[3] = {2200, 2201, 2202};
    gridledger__reading__init(r);
    r->meter_id = "m-1";
    r->timestamp_ms = 1700000000000LL;
    r->energy_total = 4242;
    r->n_voltage_dv = 3;
    r->voltage_dv = v;
    rp[0] = r;
    gridledger__reading_batch__init(b);
    b->district = "d1";
    b->batch_id = "b-0";
    b->n_readings = 1;
    b->readings = rp;
    gridledger__tx_payload__init(p);
    p->chain_id = "d1";
    p->created_ms = 1700000001234LL;
    p->nonce = "00112233";
    p->body_case = GRIDLEDGER__TX_PAYLOAD__BODY_READINGS;
    p->readings = b;
}

/* Submitting: payload = the packed TxPayload, signature = ECDSA P-256 (DER) over
 * SHA-256(payload) that verifies with the certificate's key, signer_certificate = its DER,
 * tx id = SHA-256(payload). The signer's district is its certificate's L. */
static void test_sign_round_trip(void)
{
    char err[300] = "";
    gl_signer *s = gl_signer_load(path(0, "col1.crt"), path(1, "col1.key"), err, sizeof err);
    Gridledger__TxPayload p;
    Gridledger__ReadingBatch b;
    Gridledger__Reading r, *rp[1];
    Gridledger__SignedTransaction tx;
    uint8_t id[GL_TX_ID_LEN], want[SHA256_DIGEST_LENGTH];

    CHECK(s != NULL);
    if (s == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    const gl_party *party = gl_signer_party(s);
    CHECK(strcmp(party->name, "col1") == 0 && strcmp(party->role, "collector") == 0 &&
          strcmp(party->district, "d1") == 0);
    sample_payload(&p, &b, &r, rp);
    CHECK(gl_sign_transaction(s, &p, &tx, id, err, sizeof err) == 0);

    /* The payload bytes decode back to what was signed. */
    Gridledger__TxPayload *back = gridledger__tx_payload__unpack(NULL, tx.payload.len, tx.payload.data);
    CHECK(back != NULL);
    if (back != NULL) {
        CHECK(strcmp(back->chain_id, "d1") == 0 && back->created_ms == 1700000001234LL &&
              strcmp(back->nonce, "00112233") == 0);
        CHECK(back->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_READINGS && back->readings->n_readings == 1 &&
              strcmp(back->readings->readings[0]->meter_id, "m-1") == 0 &&
              back->readings->readings[0]->n_voltage_dv == 3);
        gridledger__tx_payload__free_unpacked(back, NULL);
    }
    /* tx id = SHA-256(payload), by a second implementation. */
    SHA256(tx.payload.data, tx.payload.len, want);
    CHECK(memcmp(id, want, sizeof want) == 0);
    uint8_t id2[GL_TX_ID_LEN];
    CHECK(gl_tx_id(tx.payload.data, tx.payload.len, id2) == 0 && memcmp(id2, want, sizeof want) == 0);
    /* Signature: DER (SEQUENCE), verifies with the certificate file's public key. */
    CHECK(tx.signature.len >= 8 && tx.signature.len <= 72 && tx.signature.data[0] == 0x30);
    CHECK(verify_with_cert_file(path(0, "col1.crt"), tx.payload.data, tx.payload.len,
                                tx.signature.data, tx.signature.len));
    CHECK(gl_verify_transaction(&tx, err, sizeof err) == 0);
    /* signer_certificate is the certificate's DER. */
    size_t dlen = 0;
    uint8_t *der = cert_der(path(0, "col1.crt"), &dlen);
    CHECK(der != NULL && dlen == tx.signer_certificate.len &&
          memcmp(der, tx.signer_certificate.data, dlen) == 0);
    free(der);
    /* Another party's certificate does not verify this signature. */
    CHECK(!verify_with_cert_file(path(0, "col2.crt"), tx.payload.data, tx.payload.len,
                                 tx.signature.data, tx.signature.len));
    /* A changed payload byte breaks the signature. */
    tx.payload.data[tx.payload.len - 1] ^= 1;
    CHECK(!verify_with_cert_file(path(0, "col1.crt"), tx.payload.data, tx.payload.len,
                                 tx.signature.data, tx.signature.len));
    CHECK(gl_verify_transaction(&tx, err, sizeof err) != 0 && strstr(err, "does not verify") != NULL);
    gl_signed_transaction_clear(&tx);
    CHECK(tx.payload.data == NULL && tx.signature.len == 0);
    gl_signed_transaction_clear(&tx); /* twice is fine */

    /* ECDSA is randomized: signing again gives another signature, same tx id. */
    Gridledger__SignedTransaction t1, t2;
    uint8_t i1[GL_TX_ID_LEN], i2[GL_TX_ID_LEN];
    CHECK(gl_sign_transaction(s, &p, &t1, i1, err, sizeof err) == 0);
    CHECK(gl_sign_transaction(s, &p, &t2, i2, err, sizeof err) == 0);
    CHECK(memcmp(i1, i2, sizeof i1) == 0);
    CHECK(gl_verify_transaction(&t1, err, sizeof err) == 0 && gl_verify_transaction(&t2, err, sizeof err) == 0);
    gl_signed_transaction_clear(&t1);
    gl_signed_transaction_clear(&t2);

    gl_party pp;
    size_t clen = 0;
    const uint8_t *cd = gl_signer_certificate_der(s, &clen);
    CHECK(gl_party_from_der(cd, clen, &pp, err, sizeof err) == 0 && strcmp(pp.district, "d1") == 0);
    CHECK(gl_party_from_der(cd, clen - 1, &pp, err, sizeof err) != 0);
    gl_signer_free(s);
}

/* Signer loading refuses what cannot produce a valid signature, without prompting. */
static void test_signer_load_errors(void)
{
    char err[300];
    gl_signer *s;

    s = gl_signer_load(path(0, "col1.crt"), path(1, "col2.key"), err, sizeof err);
    CHECK(s == NULL && strstr(err, "does not match") != NULL);
    gl_signer_free(s);
    s = gl_signer_load(path(0, "col1.crt"), path(1, "col1enc.key"), err, sizeof err);
    CHECK(s == NULL && strstr(err, "unencrypted PEM private key") != NULL);
    gl_signer_free(s);
    s = gl_signer_load(path(0, "p384.crt"), path(1, "p384.key"), err, sizeof err);
    CHECK(s == NULL && strstr(err, "not an ECDSA P-256 key") != NULL);
    gl_signer_free(s);
    s = gl_signer_load(path(0, "missing.crt"), path(1, "col1.key"), err, sizeof err);
    CHECK(s == NULL && strstr(err, "missing.crt") != NULL);
    gl_signer_free(s);
    s = gl_signer_load(path(0, "ops1.crt"), path(1, "ops1.key"), err, sizeof err);
    CHECK(s != NULL && strcmp(gl_signer_party(s)->district, "") == 0 &&
          strcmp(gl_signer_party(s)->role, "ops") == 0);
    gl_signer_free(s);
}

static void sha(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl,
                uint8_t out[32])
{
    uint8_t buf[200];
    memcpy(buf, a, al);
    memcpy(buf + al, b, bl);
    memcpy(buf + al + bl, c, cl);
    SHA256(buf, al + bl + cl, out);
}

/* Block hashes (ChainHashing.swift): hash = SHA-256(header), tx_root = Merkle root with
 * leaf H(0x00||id), node H(0x01||l||r), odd node promoted; computed here by hand for 3. */
static void test_block_verify(void)
{
    char err[300];
    gl_signer *s = gl_signer_load(path(0, "col1.crt"), path(1, "col1.key"), err, sizeof err);
    Gridledger__TxPayload p;
    Gridledger__ReadingBatch b;
    Gridledger__Reading r, *rp[1];
    Gridledger__SignedTransaction txs[3], *txp[3];
    Gridledger__TxOutcome outs[3], *outp[3];
    uint8_t ids[3][32], leaf[3][32], n01[32], root[32], hash[32];
    static const uint8_t zero = 0, one = 1;
    char *nonces[3] = {"a", "b", "c"};

    CHECK(s != NULL);
    if (s == NULL)
        return;
    sample_payload(&p, &b, &r, rp);
    for (int i = 0; i < 3; i++) {
        p.nonce = nonces[i];
        CHECK(gl_sign_transaction(s, &p, &txs[i], ids[i], err, sizeof err) == 0);
        txp[i] = &txs[i];
        gridledger__tx_outcome__init(&outs[i]);
        outs[i].readings_accepted = 1;
        outp[i] = &outs[i];
        sha(&zero, 1, ids[i], 32, "", 0, leaf[i]);
    }
    sha(&one, 1, leaf[0], 32, leaf[1], 32, n01);
    sha(&one, 1, n01, 32, leaf[2], 32, root);

    Gridledger__BlockHeader h;
    gridledger__block_header__init(&h);
    h.chain_id = "d1";
    h.height = 5;
    h.timestamp_ms = 1700000000000LL;
    h.tx_root.data = root;
    h.tx_root.len = 32;
    h.proposer = "node1";
    h.tx_count = 3;
    h.hash_suite = "sha256";
    Gridledger__Block blk;
    gridledger__block__init(&blk);
    blk.header = &h;
    blk.n_transactions = 3;
    blk.transactions = txp;
    blk.n_outcomes = 3;
    blk.outcomes = outp;
    uint8_t hb[256];
    size_t hl = gridledger__block_header__pack(&h, hb);
    SHA256(hb, hl, hash);
    Gridledger__GetBlockResponse resp;
    gridledger__get_block_response__init(&resp);
    resp.block = &blk;
    resp.hash.data = hash;
    resp.hash.len = 32;
    CHECK(gl_block_verify(&resp, err, sizeof err) == 0);

    /* Swapping two transactions changes the root. */
    txp[0] = &txs[1];
    txp[1] = &txs[0];
    CHECK(gl_block_verify(&resp, err, sizeof err) != 0 && strstr(err, "tx_root") != NULL);
    txp[0] = &txs[0];
    txp[1] = &txs[1];
    h.tx_count = 2;
    CHECK(gl_block_verify(&resp, err, sizeof err) != 0 && strstr(err, "hash") != NULL);
    h.tx_count = 3;
    hash[0] ^= 1;
    CHECK(gl_block_verify(&resp, err, sizeof err) != 0 && strstr(err, "block hash") != NULL);
    hash[0] ^= 1;
    blk.n_outcomes = 2;
    CHECK(gl_block_verify(&resp, err, sizeof err) != 0 && strstr(err, "outcomes") != NULL);

    /* An empty block: tx_root = H(""). */
    uint8_t empty_root[32];
    SHA256((const uint8_t *)"", 0, empty_root);
    h.tx_root.data = empty_root;
    h.tx_count = 0;
    blk.n_transactions = 0;
    blk.n_outcomes = 0;
    hl = gridledger__block_header__pack(&h, hb);
    SHA256(hb, hl, hash);
    CHECK(gl_block_verify(&resp, err, sizeof err) == 0);

    for (int i = 0; i < 3; i++)
        gl_signed_transaction_clear(&txs[i]);
    gl_signer_free(s);
}

/* MemberRequest as the Admin calls send it: field by field, bytes as protoc would. */
static void test_member_request(void)
{
    Gridledger__MemberRequest req;
    uint8_t buf[128];

    gl_member_request_init(&req, "d1", 2, NULL, NULL);
    size_t n = gridledger__member_request__pack(&req, buf);
    /* chain_id (1) = "d1", node_id (2) = 2; empty name and address are not sent */
    static const uint8_t want[] = {0x0a, 0x02, 'd', '1', 0x10, 0x02};
    CHECK(n == sizeof want && memcmp(buf, want, n) == 0);

    gl_member_request_init(&req, "d1", 300, "node4", "127.0.0.1:7404");
    n = gridledger__member_request__pack(&req, buf);
    Gridledger__MemberRequest *back = gridledger__member_request__unpack(NULL, n, buf);
    CHECK(back != NULL);
    if (back != NULL) {
        CHECK(strcmp(back->chain_id, "d1") == 0 && back->node_id == 300);
        CHECK(strcmp(back->name, "node4") == 0 && strcmp(back->address, "127.0.0.1:7404") == 0);
        gridledger__member_request__free_unpacked(back, NULL);
    }
    /* MemberResponse decodes conf_state and leader. */
    static const uint8_t resp[] = {0x0a, 0x08, 0x0a, 0x03, 1, 2, 3, 0x12, 0x01, 4, 0x10, 0x02};
    Gridledger__MemberResponse *r = gridledger__member_response__unpack(NULL, sizeof resp, resp);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(r->leader == 2 && r->conf_state != NULL);
        if (r->conf_state != NULL) {
            CHECK(r->conf_state->n_voters == 3 && r->conf_state->voters[2] == 3);
            CHECK(r->conf_state->n_learners == 1 && r->conf_state->learners[0] == 4);
        }
        gridledger__member_response__free_unpacked(r, NULL);
    }
}

/* Consistency is field 4 of GetBlockRequest, 2 of GetTransaction/GetState, 3 of GetHistory. */
static void test_consistency_fields(void)
{
    uint8_t buf[64];
    Gridledger__GetStateRequest sr;
    gridledger__get_state_request__init(&sr);
    sr.key = "k";
    sr.consistency = GRIDLEDGER__CONSISTENCY__CONSISTENCY_LINEARIZABLE;
    size_t n = gridledger__get_state_request__pack(&sr, buf);
    static const uint8_t want[] = {0x0a, 0x01, 'k', 0x10, 0x01};
    CHECK(n == sizeof want && memcmp(buf, want, n) == 0);
    sr.consistency = GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL;
    CHECK(gridledger__get_state_request__pack(&sr, buf) == 3); /* default: not sent */
}

/* Ends with `chain_id` as field `field` (wire type 2): the last bytes of buf[0..n). */
static int ends_with_chain(const uint8_t *buf, size_t n, unsigned field, const char *id)
{
    size_t len = strlen(id);
    uint8_t tail[8 + 64];
    size_t t = 0;
    unsigned key = field << 3 | 2;
    if (key >= 0x80) {
        tail[t++] = (uint8_t)(key | 0x80);
        tail[t++] = (uint8_t)(key >> 7);
    } else {
        tail[t++] = (uint8_t)key;
    }
    tail[t++] = (uint8_t)len;
    memcpy(tail + t, id, len);
    t += len;
    return n >= t && memcmp(buf + n - t, tail, t) == 0;
}

/* Every chain-service request builder puts chain_id on the wire (field 15; 2 of
 * SubmitRequest; 1 of GetChainInfoRequest); "" / NULL is not sent. */
static void test_chain_id_fields(void)
{
    uint8_t buf[256];
    size_t n;
    static const uint8_t hash[32] = {1, 2, 3};

    Gridledger__GetChainInfoRequest ci;
    gl_get_chain_info_request_init(&ci, "d2");
    n = gridledger__get_chain_info_request__pack(&ci, buf);
    static const uint8_t want_ci[] = {0x0a, 0x02, 'd', '2'};
    CHECK(n == sizeof want_ci && memcmp(buf, want_ci, n) == 0);
    gl_get_chain_info_request_init(&ci, NULL);
    CHECK(gridledger__get_chain_info_request__pack(&ci, buf) == 0);

    Gridledger__SignedTransaction tx;
    gridledger__signed_transaction__init(&tx);
    tx.payload.data = (uint8_t *)"p";
    tx.payload.len = 1;
    Gridledger__SubmitRequest sr;
    gl_submit_request_init(&sr, "d2", &tx);
    n = gridledger__submit_request__pack(&sr, buf);
    static const uint8_t want_sr[] = {0x0a, 0x03, 0x0a, 0x01, 'p', 0x12, 0x02, 'd', '2'};
    CHECK(n == sizeof want_sr && memcmp(buf, want_sr, n) == 0);
    gl_submit_request_init(&sr, "", &tx);
    CHECK(gridledger__submit_request__pack(&sr, buf) == 5);

    Gridledger__GetBlockRequest br;
    gl_get_block_request_init(&br, "d2", 7, NULL, 0, GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL);
    n = gridledger__get_block_request__pack(&br, buf);
    CHECK(ends_with_chain(buf, n, 15, "d2"));
    Gridledger__GetBlockRequest *b = gridledger__get_block_request__unpack(NULL, n, buf);
    CHECK(b != NULL && strcmp(b->chain_id, "d2") == 0 && b->height == 7 && b->by_height);
    if (b != NULL)
        gridledger__get_block_request__free_unpacked(b, NULL);
    gl_get_block_request_init(&br, "d1", 0, hash, sizeof hash,
                              GRIDLEDGER__CONSISTENCY__CONSISTENCY_LINEARIZABLE);
    n = gridledger__get_block_request__pack(&br, buf);
    b = gridledger__get_block_request__unpack(NULL, n, buf);
    CHECK(b != NULL && strcmp(b->chain_id, "d1") == 0 && b->hash.len == 32 && !b->by_height &&
          b->consistency == GRIDLEDGER__CONSISTENCY__CONSISTENCY_LINEARIZABLE);
    if (b != NULL)
        gridledger__get_block_request__free_unpacked(b, NULL);

    Gridledger__GetTransactionRequest tr;
    gl_get_transaction_request_init(&tr, "d2", hash, sizeof hash,
                                    GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL);
    n = gridledger__get_transaction_request__pack(&tr, buf);
    CHECK(ends_with_chain(buf, n, 15, "d2"));

    Gridledger__GetStateRequest st;
    gl_get_state_request_init(&st, "d2", "k", GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL);
    n = gridledger__get_state_request__pack(&st, buf);
    static const uint8_t want_st[] = {0x0a, 0x01, 'k', 0x7a, 0x02, 'd', '2'};
    CHECK(n == sizeof want_st && memcmp(buf, want_st, n) == 0);
    gl_get_state_request_init(&st, NULL, "k", GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL);
    CHECK(gridledger__get_state_request__pack(&st, buf) == 3);

    Gridledger__GetHistoryRequest hr;
    gl_get_history_request_init(&hr, "d2", "k", 5, GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL);
    n = gridledger__get_history_request__pack(&hr, buf);
    CHECK(ends_with_chain(buf, n, 15, "d2"));

    Gridledger__SubscribeBlocksRequest sb;
    gl_subscribe_blocks_request_init(&sb, "d2", 3);
    n = gridledger__subscribe_blocks_request__pack(&sb, buf);
    static const uint8_t want_sb[] = {0x08, 0x03, 0x7a, 0x02, 'd', '2'};
    CHECK(n == sizeof want_sb && memcmp(buf, want_sb, n) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_chain DIR\n");
        return 64;
    }
    dir = argv[1];
    run("CSV: every column, phases, CRLF, blank lines, quoting", test_csv_valid);
    run("CSV: BOM, header-only, empty file", test_csv_bom_and_empty);
    run("CSV: bad input reported as file:line: reason", test_csv_errors);
    run("signing round trip: EVP_DigestVerify, tx id = SHA-256(payload)", test_sign_round_trip);
    run("signer load errors (mismatch, encrypted, P-384)", test_signer_load_errors);
    run("block hash and Merkle tx_root checks", test_block_verify);
    run("Admin MemberRequest building, MemberResponse decoding", test_member_request);
    run("read consistency on the wire", test_consistency_fields);
    run("chain_id on the wire in every chain-service request", test_chain_id_fields);
    return check_report();
}
