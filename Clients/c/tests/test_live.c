/*
 * test_live.c - libgridledger against a real gridnode serving chain "d1" (run by
 * tests/integration.sh): what gridctl cannot show, checked at the library level.
 *
 * usage: test_live HOST PORT CERT_DIR   (CERT_DIR holds ca.crt, col1.{crt,key}, a collector
 *        of district d1, and mkt1.{crt,key}, marketing: it reads blocks, which a collector
 *        may not, Docs/permissions.md). Prints "N passed, N failed" last.
 */
#include "gridledger.h"
#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *host, *dir;
static uint16_t port;

/* col1's certificate and key (the signer of the submissions), the CA. */
static char cert[600], key[600], ca[600];

/* Connects as certificate NAME of the cert dir (NAME.crt, NAME.key). */
static gl_client *connect_as(const char *name)
{
    char err[512], party_cert[600], party_key[600];
    snprintf(party_cert, sizeof party_cert, "%s/%s.crt", dir, name);
    snprintf(party_key, sizeof party_key, "%s/%s.key", dir, name);
    gl_options o;
    memset(&o, 0, sizeof o);
    o.host = host;
    o.port = port;
    o.cert_path = party_cert;
    o.key_path = party_key;
    o.ca_path = ca;
    gl_client *c = gl_connect(&o, err, sizeof err);
    if (c == NULL)
        fprintf(stderr, "  connect: %s\n", err);
    return c;
}

static gl_client *connect_col1(void) { return connect_as("col1"); }

/* A transaction of `n` readings of meter `meter` from t0, 15 min apart. */
static int sign_batch(gl_signer *sg, const char *chain_id, const char *meter, int64_t t0, size_t n,
                      const char *nonce, Gridledger__SignedTransaction *tx, uint8_t id[GL_TX_ID_LEN])
{
    char err[300];
    Gridledger__Reading r[8], *rp[8];
    Gridledger__ReadingBatch b;
    Gridledger__TxPayload p;
    if (n > 8)
        return -1;
    for (size_t i = 0; i < n; i++) {
        gridledger__reading__init(&r[i]);
        r[i].meter_id = (char *)meter;
        r[i].timestamp_ms = t0 + (int64_t)i * 900000;
        r[i].energy_total = 1000 + i;
        rp[i] = &r[i];
    }
    gridledger__reading_batch__init(&b);
    b.district = (char *)gl_signer_party(sg)->district;
    b.batch_id = (char *)nonce;
    b.n_readings = n;
    b.readings = rp;
    gridledger__tx_payload__init(&p);
    p.chain_id = (char *)chain_id;
    p.created_ms = (int64_t)time(NULL) * 1000;
    p.nonce = (char *)nonce;
    p.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_READINGS;
    p.readings = &b;
    if (gl_sign_transaction(sg, &p, tx, id, err, sizeof err) != 0) {
        fprintf(stderr, "  sign: %s\n", err);
        return -1;
    }
    return 0;
}

/* Submitting: the same transaction twice is ALREADY_EXISTS, whose trailer metadata
 * gridledger-tx-location-bin is the original TxLocation and whose message says
 * "height=H index=I". */
static void test_already_exists(void)
{
    gl_client *c = connect_col1();
    char err[300];
    gl_signer *sg = gl_signer_load(cert, key, err, sizeof err);
    gl_status st;
    Gridledger__SignedTransaction tx;
    Gridledger__SubmitResponse *sr = NULL;
    Gridledger__TxLocation *loc = NULL;
    uint8_t id[GL_TX_ID_LEN];

    gridledger__signed_transaction__init(&tx);
    CHECK(c != NULL && sg != NULL);
    if (c == NULL || sg == NULL)
        goto end;
    CHECK(sign_batch(sg, "d1", "live-1", 1800000000000LL, 3, "live-a", &tx, id) == 0);
    CHECK(gl_submit_readings(c, &tx, 20000, &sr, &st) == GL_OK);
    CHECK_CODE(st, GL_OK);
    CHECK(sr != NULL && sr->location != NULL && sr->outcome != NULL && sr->outcome->readings_accepted == 3);
    if (sr == NULL || sr->location == NULL)
        goto end;
    CHECK(sr->location->tx_id.len == GL_TX_ID_LEN && memcmp(sr->location->tx_id.data, id, GL_TX_ID_LEN) == 0);

    CHECK(gl_submit_readings(c, &tx, 20000, NULL, &st) == GL_ALREADY_EXISTS);
    char want[100];
    snprintf(want, sizeof want, "height=%llu index=%lu", (unsigned long long)sr->location->height,
             (unsigned long)sr->location->index);
    CHECK(strstr(st.message, want) != NULL);
    CHECK(gl_status_tx_location(&st, &loc) == 1);
    CHECK(loc != NULL && loc->height == sr->location->height && loc->index == sr->location->index);
    CHECK(loc != NULL && loc->tx_id.len == GL_TX_ID_LEN && memcmp(loc->tx_id.data, id, GL_TX_ID_LEN) == 0);
    CHECK(loc != NULL && loc->block_hash.len == sr->location->block_hash.len &&
          memcmp(loc->block_hash.data, sr->location->block_hash.data, loc->block_hash.len) == 0);
    CHECK(gl_client_usable(c));
end:
    if (loc != NULL)
        gridledger__tx_location__free_unpacked(loc, NULL);
    if (sr != NULL)
        gridledger__submit_response__free_unpacked(sr, NULL);
    gl_signed_transaction_clear(&tx);
    gl_signer_free(sg);
    gl_close(c);
}

/* Submitting: a transaction for another chain is INVALID_ARGUMENT; a bad signature is
 * UNAUTHENTICATED. */
static void test_refusals(void)
{
    gl_client *c = connect_col1();
    char err[300];
    gl_signer *sg = gl_signer_load(cert, key, err, sizeof err);
    gl_status st;
    Gridledger__SignedTransaction tx;
    uint8_t id[GL_TX_ID_LEN];

    gridledger__signed_transaction__init(&tx);
    CHECK(c != NULL && sg != NULL);
    if (c == NULL || sg == NULL)
        goto end;
    CHECK(sign_batch(sg, "other-chain", "live-2", 1800000000000LL, 1, "live-b", &tx, id) == 0);
    gl_submit_readings(c, &tx, 20000, NULL, &st);
    CHECK_CODE(st, GL_INVALID_ARGUMENT);
    gl_signed_transaction_clear(&tx);
    CHECK(sign_batch(sg, "d1", "live-2", 1800000000000LL, 1, "live-c", &tx, id) == 0);
    tx.signature.data[tx.signature.len - 1] ^= 0x01;
    gl_submit_readings(c, &tx, 20000, NULL, &st);
    CHECK_CODE(st, GL_UNAUTHENTICATED);
end:
    gl_signed_transaction_clear(&tx);
    gl_signer_free(sg);
    gl_close(c);
}

/* Ingest/StreamReadings (bidirectional): one StreamAck per request, in order; the client
 * reads each ack before sending the next and half-closes with an END frame (type 7). */
static void test_stream_readings_end_frame(void)
{
    gl_client *c = connect_col1();
    char err[300];
    gl_signer *sg = gl_signer_load(cert, key, err, sizeof err);
    gl_status st;
    gl_stream *s = NULL;
    Gridledger__SignedTransaction tx;
    Gridledger__SubmitRequest req;
    ProtobufCMessage *m = NULL;
    uint8_t id[GL_TX_ID_LEN];
    static const char *nonces[3] = {"live-s0", "live-s1", "live-s2"};

    gridledger__signed_transaction__init(&tx);
    CHECK(c != NULL && sg != NULL);
    if (c == NULL || sg == NULL)
        goto end;
    s = gl_stream_open(c, "/gridledger.Ingest/StreamReadings", &gridledger__stream_ack__descriptor,
                       30000, &st);
    CHECK(s != NULL);
    if (s == NULL)
        goto end;
    for (uint64_t i = 0; i < 3; i++) {
        CHECK(sign_batch(sg, "d1", "live-3", 1800000000000LL + (int64_t)i * 10000000, 2, nonces[i], &tx, id) == 0);
        gridledger__submit_request__init(&req);
        req.transaction = &tx;
        CHECK(gl_stream_send(s, &req.base, &st) == 0);
        CHECK(gl_stream_next(s, &m, &st) == 1);
        CHECK_CODE(st, GL_OK);
        const Gridledger__StreamAck *a = (const Gridledger__StreamAck *)m;
        CHECK(a != NULL && a->sequence == i && a->code == 0);
        CHECK(a != NULL && a->response != NULL && a->response->location != NULL &&
              a->response->location->tx_id.len == GL_TX_ID_LEN &&
              memcmp(a->response->location->tx_id.data, id, GL_TX_ID_LEN) == 0 &&
              a->response->outcome != NULL && a->response->outcome->readings_accepted == 2);
        if (m != NULL)
            protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
        gl_signed_transaction_clear(&tx);
    }
    CHECK(gl_stream_close_send(s, &st) == 0);
    CHECK(gl_stream_next(s, &m, &st) == 0);
    CHECK_CODE(st, GL_OK);
    gl_stream_free(s);
    s = NULL;
    /* The connection is still good for the next call. */
    Gridledger__ChainInfo *ci = NULL;
    CHECK(gl_get_chain_info(c, 5000, &ci, &st) == GL_OK);
    if (ci != NULL)
        gridledger__chain_info__free_unpacked(ci, NULL);
end:
    gl_stream_free(s);
    gl_signed_transaction_clear(&tx);
    gl_signer_free(sg);
    gl_close(c);
}

/* Query/SubscribeBlocks: a live subscription freed mid-stream is cancelled; the node keeps
 * serving the connection. Every block received checks out (gl_block_verify) and links to
 * the previous one. */
static void test_subscribe_cancel(void)
{
    gl_client *c = connect_as("mkt1");
    gl_status st;
    Gridledger__GetBlockResponse *b = NULL;
    uint8_t prev[32];
    size_t prev_len = 0;
    char err[300];

    CHECK(c != NULL);
    if (c == NULL)
        return;
    gl_stream *s = gl_subscribe_blocks(c, 0, 10000, &st);
    CHECK(s != NULL);
    for (uint64_t h = 0; s != NULL && h < 3; h++) {
        CHECK(gl_subscribe_blocks_next(s, &b, &st) == 1);
        if (b == NULL)
            break;
        CHECK(b->block->header->height == h);
        CHECK(gl_block_verify(b, err, sizeof err) == 0);
        CHECK(b->block->header->previous_hash.len == prev_len &&
              (prev_len == 0 || memcmp(b->block->header->previous_hash.data, prev, prev_len) == 0));
        prev_len = b->hash.len <= sizeof prev ? b->hash.len : 0;
        memcpy(prev, b->hash.data, prev_len);
        gridledger__get_block_response__free_unpacked(b, NULL);
        b = NULL;
    }
    gl_stream_free(s);
    Gridledger__ServingStatus ss = 0;
    CHECK(gl_health_check(c, "", 5000, &ss, &st) == GL_OK);
    gl_close(c);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_live HOST PORT CERT_DIR\n");
        return 64;
    }
    host = argv[1];
    port = (uint16_t)atoi(argv[2]);
    dir = argv[3];
    snprintf(cert, sizeof cert, "%s/col1.crt", dir);
    snprintf(key, sizeof key, "%s/col1.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    signal(SIGPIPE, SIG_IGN);
    run("live: the same transaction twice is ALREADY_EXISTS with its location trailer", test_already_exists);
    run("live: other chain INVALID_ARGUMENT, bad signature UNAUTHENTICATED", test_refusals);
    run("live: StreamReadings acks in order, half-closed by an END frame", test_stream_readings_end_frame);
    run("live: SubscribeBlocks verified and linked, cancelled by free", test_subscribe_cancel);
    return check_report();
}
