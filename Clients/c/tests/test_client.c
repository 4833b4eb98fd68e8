/*
 * test_client.c - the client library over real loopback TLS against tests/fake_node.py,
 * which scripts the rare paths (server PING, GOAWAY, oversized MESSAGE, missed deadline).
 * Each test cites the rule of Docs/wire-protocol.md it checks.
 *
 * usage: test_client DIR PORT BADROLE_PORT
 *   DIR holds the certificates of tests/make_test_certs.sh; PORT serves node1.crt,
 *   BADROLE_PORT serves col1node.crt (a valid certificate whose role is not "node").
 * Prints "N passed, N failed" last.
 */
#include "gridledger.h"
#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *dir;
static uint16_t port, badrole_port;

static char paths[4][512];

static gl_client *connect_as(const char *who, const char *ca, const char *server_name,
                             uint16_t p, char *err, size_t errlen)
{
    gl_options o;
    memset(&o, 0, sizeof o);
    snprintf(paths[0], sizeof paths[0], "%s/%s.crt", dir, who);
    snprintf(paths[1], sizeof paths[1], "%s/%s.key", dir, who);
    snprintf(paths[2], sizeof paths[2], "%s/%s", dir, ca);
    o.host = "127.0.0.1";
    o.port = p;
    o.cert_path = paths[0];
    o.key_path = paths[1];
    o.ca_path = paths[2];
    o.server_name = server_name;
    o.connect_timeout_ms = 5000;
    return gl_connect(&o, err, errlen);
}

static gl_client *connect_ops(void)
{
    char err[512];
    gl_client *c = connect_as("ops1", "ca.crt", NULL, port, err, sizeof err);
    if (c == NULL)
        fprintf(stderr, "  connect: %s\n", err);
    return c;
}

static void expect_serving(gl_client *c)
{
    gl_status st;
    Gridledger__ServingStatus s = GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_UNKNOWN;
    gl_health_check(c, "", 2000, &s, &st);
    CHECK_CODE(st, GL_OK);
    CHECK(s == GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_SERVING);
}

/* Services: Ops/GetStatus as ops decodes the response; stream ids are odd, increasing. */
static void test_get_status(void)
{
    gl_client *c = connect_ops();
    Gridledger__GetStatusResponse *r = NULL;
    gl_status st;
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(gl_get_status(c, 2000, &r, &st) == GL_OK);
    CHECK_CODE(st, GL_OK);
    CHECK(r != NULL && strcmp(r->node_id, "fake1") == 0);
    CHECK(r != NULL && r->n_chains == 1 && r->chains[0]->height == 7);
    CHECK(r != NULL && r->caller != NULL && strcmp(r->caller->role, "ops") == 0);
    if (r != NULL)
        gridledger__get_status_response__free_unpacked(r, NULL);
    gl_stream *s = gl_stream_open(c, "/gridledger.Health/Check",
                                  &gridledger__health_check_response__descriptor, 0, &st);
    CHECK(s != NULL && gl_stream_id(s) == 3);
    gl_stream_free(s); /* never sent: no CANCEL goes out */
    expect_serving(c);
    gl_close(c);
}

/* Authorization: a collector gets PERMISSION_DENIED from Ops/GetStatus. */
static void test_permission_denied(void)
{
    char err[512];
    gl_client *c = connect_as("col1", "ca.crt", NULL, port, err, sizeof err);
    Gridledger__GetStatusResponse *r = NULL;
    gl_status st;
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(gl_get_status(c, 2000, &r, &st) == GL_PERMISSION_DENIED);
    CHECK(r == NULL);
    CHECK(strstr(st.message, "collector") != NULL);
    gl_close(c);
}

/* PING: the client answers a server PING with ACK and the same 8 bytes. */
static void test_ping(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    Gridledger__ServingStatus s = 0;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_health_check(c, "ping", 2000, &s, &st);
    CHECK_CODE(st, GL_OK);
    CHECK(s == GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_SERVING); /* the fake saw a right ACK */
    gl_close(c);
}

/* Limits: a MESSAGE above max-message-bytes fails the call RESOURCE_EXHAUSTED and the
 * connection stays usable. */
static void test_oversized_response(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_health_check(c, "big", 5000, NULL, &st);
    CHECK_CODE(st, GL_RESOURCE_EXHAUSTED);
    CHECK(strstr(st.message, "5242880") != NULL);
    CHECK(gl_client_usable(c));
    expect_serving(c);
    gl_close(c);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Deadline: the client fails the call locally when timeout_ms passes (and sends CANCEL;
 * the fake logs it); later calls on the connection work. */
static void test_deadline(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    uint64_t t0 = mono_ms();
    gl_health_check(c, "slow", 300, NULL, &st);
    uint64_t took = mono_ms() - t0;
    CHECK_CODE(st, GL_DEADLINE_EXCEEDED);
    CHECK(took >= 295 && took < 1500);
    expect_serving(c);
    gl_close(c);
}

/* Call kinds: a unary call with two responses, or one that does not decode, is INTERNAL;
 * the stale frames that follow are ignored. */
static void test_bad_unary_responses(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_health_check(c, "twice", 2000, NULL, &st);
    CHECK_CODE(st, GL_INTERNAL);
    expect_serving(c);
    gl_health_check(c, "garbage", 2000, NULL, &st);
    CHECK_CODE(st, GL_INTERNAL);
    expect_serving(c);
    gl_health_check(c, "nope", 2000, NULL, &st);
    CHECK_CODE(st, GL_NOT_FOUND);
    ProtobufCMessage *resp = NULL;
    Gridledger__HealthCheckRequest req;
    gridledger__health_check_request__init(&req);
    gl_unary(c, "/gridledger.Nope/Nothing", &req.base,
             &gridledger__health_check_response__descriptor, &resp, 2000, &st);
    CHECK_CODE(st, GL_UNIMPLEMENTED);
    CHECK(resp == NULL);
    gl_unary(c, "no-slash", &req.base, &gridledger__health_check_response__descriptor, &resp,
             2000, &st);
    CHECK_CODE(st, GL_INVALID_ARGUMENT);
    gl_close(c);
}

/* Server streaming: Health/Watch yields every update, then the TRAILERS status. One call
 * at a time per connection. */
static void test_watch(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    Gridledger__ServingStatus seen[4];
    int n = 0;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_stream *w = gl_health_watch(c, "", 0, &st);
    CHECK(w != NULL);
    if (w == NULL) {
        gl_close(c);
        return;
    }
    CHECK(gl_stream_open(c, "/gridledger.Health/Check",
                         &gridledger__health_check_response__descriptor, 0, &st) == NULL);
    CHECK_CODE(st, GL_FAILED_PRECONDITION);
    Gridledger__ServingStatus s;
    while (n < 4 && gl_health_watch_next(w, &s, &st) == 1)
        seen[n++] = s;
    CHECK(n == 3);
    CHECK_CODE(st, GL_OK);
    CHECK(n == 3 && seen[0] == 1 && seen[1] == 2 && seen[2] == 1);
    CHECK(gl_health_watch_next(w, &s, &st) == 0); /* ended stays ended */
    CHECK_CODE(st, GL_OK);
    gl_stream_free(w);
    expect_serving(c);
    gl_close(c);
}

/* GOAWAY: a call above last_stream_id fails UNAVAILABLE and no new call starts. */
static void test_goaway(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_health_check(c, "goaway", 2000, NULL, &st);
    CHECK_CODE(st, GL_UNAVAILABLE);
    CHECK(strstr(st.message, "GOAWAY") != NULL);
    CHECK(!gl_client_usable(c));
    gl_health_check(c, "", 2000, NULL, &st);
    CHECK_CODE(st, GL_UNAVAILABLE);
    gl_close(c);
}

/* Idle timeout: a GOAWAY (code OK, "idle") that arrives between calls is noticed before
 * the next call is sent, which then fails UNAVAILABLE at once. */
static void test_idle_goaway(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    Gridledger__ServingStatus s = 0;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gl_health_check(c, "idle-goaway", 2000, &s, &st);
    CHECK_CODE(st, GL_OK);
    CHECK(s == GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_SERVING);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    gl_stream *x = gl_stream_open(c, "/gridledger.Health/Check",
                                  &gridledger__health_check_response__descriptor, 0, &st);
    CHECK(x == NULL);
    CHECK_CODE(st, GL_UNAVAILABLE);
    CHECK(strstr(st.message, "idle") != NULL);
    CHECK(!gl_client_usable(c));
    gl_stream_free(x);
    gl_close(c);
}

/* Transport: the server must chain to our CA, name the dialled host, carry role node. */
static void test_tls_verification(void)
{
    char err[512];
    gl_client *c;

    c = connect_as("ops1", "other/ca.crt", NULL, port, err, sizeof err);
    CHECK(c == NULL);
    CHECK(c == NULL && strstr(err, "the node's certificate is not signed by the CA in") != NULL);
    gl_close(c);

    c = connect_as("ops1", "ca.crt", "node2.example", port, err, sizeof err);
    CHECK(c == NULL && strstr(err, "the node's certificate does not name node2.example") != NULL);
    gl_close(c);

    c = connect_as("ops1", "ca.crt", "localhost", port, err, sizeof err);
    CHECK(c != NULL);
    gl_close(c);

    c = connect_as("ops1", "ca.crt", NULL, badrole_port, err, sizeof err);
    CHECK(c == NULL && strstr(err, "\"collector\"") != NULL);
    gl_close(c);

    c = connect_as("ops1", "missing-ca.crt", NULL, port, err, sizeof err);
    CHECK(c == NULL && strstr(err, "CA certificate") != NULL);
    gl_close(c);

    c = connect_as("ops1", "ca.crt", NULL, 1, err, sizeof err);
    CHECK(c == NULL && strstr(err, "connection refused (is the node running?)") != NULL);
    gl_close(c);
}

/* Streams and calls: a bidirectional call may read before it half-closes; close_send then
 * sends an END frame (type 7). The fake acks each request and ends with "acked N". */
static void test_bidi_read_before_close(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    ProtobufCMessage *m = NULL;
    Gridledger__SubmitRequest req;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gridledger__submit_request__init(&req);
    gl_stream *s = gl_stream_open(c, "/gridledger.Ingest/StreamReadings",
                                  &gridledger__stream_ack__descriptor, 5000, &st);
    CHECK(s != NULL);
    if (s == NULL) {
        gl_close(c);
        return;
    }
    for (uint64_t i = 0; i < 2; i++) {
        CHECK(gl_stream_send(s, &req.base, &st) == 0);
        CHECK(gl_stream_next(s, &m, &st) == 1); /* flushes the request, then reads its ack */
        CHECK(m != NULL && ((Gridledger__StreamAck *)m)->sequence == i);
        if (m != NULL)
            protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    CHECK(gl_stream_close_send(s, &st) == 0); /* nothing buffered: an END frame */
    CHECK_CODE(st, GL_OK);
    CHECK(gl_stream_close_send(s, &st) == 0); /* again: no-op */
    CHECK(gl_stream_next(s, &m, &st) == 0);
    CHECK_CODE(st, GL_OK);
    CHECK(strcmp(st.message, "acked 2") == 0);
    CHECK(gl_stream_send(s, &req.base, &st) != 0); /* finished */
    gl_stream_free(s);
    expect_serving(c);
    gl_close(c);
}

/* Streams and calls: when the last MESSAGE is still buffered, END_STREAM rides on it. */
static void test_bidi_end_stream_on_message(void)
{
    gl_client *c = connect_ops();
    gl_status st;
    ProtobufCMessage *m = NULL;
    Gridledger__SubmitRequest req;
    int n = 0;
    if (c == NULL) {
        CHECK(0);
        return;
    }
    gridledger__submit_request__init(&req);
    gl_stream *s = gl_stream_open(c, "/gridledger.Ingest/StreamReadings",
                                  &gridledger__stream_ack__descriptor, 5000, &st);
    CHECK(s != NULL);
    if (s == NULL) {
        gl_close(c);
        return;
    }
    CHECK(gl_stream_send(s, &req.base, &st) == 0);
    CHECK(gl_stream_send(s, &req.base, &st) == 0);
    CHECK(gl_stream_send(s, &req.base, &st) == 0);
    CHECK(gl_stream_close_send(s, &st) == 0);
    while (gl_stream_next(s, &m, &st) == 1) {
        CHECK(((Gridledger__StreamAck *)m)->sequence == (uint64_t)n);
        n++;
        protobuf_c_message_free_unpacked(m, NULL);
    }
    CHECK(n == 3);
    CHECK_CODE(st, GL_OK);
    CHECK(strcmp(st.message, "acked 3") == 0);
    gl_stream_free(s);
    gl_close(c);
}

static gl_signer *load_signer(const char *who)
{
    char cert[600], key[600], err[300];
    snprintf(cert, sizeof cert, "%s/%s.crt", dir, who);
    snprintf(key, sizeof key, "%s/%s.key", dir, who);
    gl_signer *s = gl_signer_load(cert, key, err, sizeof err);
    if (s == NULL)
        fprintf(stderr, "  signer %s: %s\n", who, err);
    return s;
}

/* One signed transaction of one reading for the chain "d1". */
static int sign_one(gl_signer *sg, const char *batch_id, const char *nonce,
                    Gridledger__SignedTransaction *tx, uint8_t id[GL_TX_ID_LEN])
{
    char err[300];
    Gridledger__Reading r, *rp[1] = {&r};
    Gridledger__ReadingBatch b;
    Gridledger__TxPayload p;
    gridledger__reading__init(&r);
    r.meter_id = "m-1";
    r.timestamp_ms = 1700000000000LL;
    r.energy_total = 1;
    gridledger__reading_batch__init(&b);
    b.district = (char *)gl_signer_party(sg)->district;
    b.batch_id = (char *)batch_id;
    b.n_readings = 1;
    b.readings = rp;
    gridledger__tx_payload__init(&p);
    p.chain_id = "d1";
    p.created_ms = 1700000000001LL;
    p.nonce = (char *)nonce;
    p.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_READINGS;
    p.readings = &b;
    if (gl_sign_transaction(sg, &p, tx, id, err, sizeof err) != 0) {
        fprintf(stderr, "  sign: %s\n", err);
        return -1;
    }
    return 0;
}

/* Chain services: SubmitReadings commits and answers the location; the same transaction
 * again is ALREADY_EXISTS with the original TxLocation in the trailer metadata
 * gridledger-tx-location-bin; GetBlock (by height and hash), GetTransaction, GetChainInfo,
 * SubscribeBlocks from a height. */
static void test_chain_services(void)
{
    char err[512];
    gl_client *c = connect_as("col1", "ca.crt", NULL, port, err, sizeof err);
    gl_signer *sg = load_signer("col1");
    gl_status st;
    Gridledger__ChainInfo *ci = NULL;
    Gridledger__SubmitResponse *sr = NULL;
    Gridledger__GetBlockResponse *gb = NULL, *gb2 = NULL;
    Gridledger__GetTransactionResponse *gt = NULL;
    Gridledger__TxLocation *loc = NULL;
    Gridledger__SignedTransaction tx;
    uint8_t id[GL_TX_ID_LEN];
    uint64_t h0 = 0;

    gridledger__signed_transaction__init(&tx);
    CHECK(c != NULL && sg != NULL);
    if (c == NULL || sg == NULL)
        goto end;
    CHECK(gl_get_chain_info(c, 2000, &ci, &st) == GL_OK);
    CHECK(ci != NULL && strcmp(ci->chain_id, "d1") == 0 && strcmp(ci->hash_suite, "sha256") == 0);
    h0 = ci != NULL ? ci->height : 0;
    CHECK(sign_one(sg, "lib-0", "n1", &tx, id) == 0);

    CHECK(gl_submit_readings(c, &tx, 10000, &sr, &st) == GL_OK);
    CHECK(gl_status_metadata_count(&st) == 0);
    CHECK(sr != NULL && sr->location != NULL && sr->location->height == h0 + 1 &&
          sr->location->index == 0 && !sr->already_existed);
    CHECK(sr != NULL && sr->location != NULL && sr->location->tx_id.len == GL_TX_ID_LEN &&
          memcmp(sr->location->tx_id.data, id, GL_TX_ID_LEN) == 0);
    CHECK(sr != NULL && sr->outcome != NULL && sr->outcome->readings_accepted == 1);

    /* The same transaction again. */
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_ALREADY_EXISTS);
    CHECK(strstr(st.message, "index=0") != NULL);
    CHECK(gl_status_metadata_count(&st) == 1);
    const char *key = NULL;
    const uint8_t *val = NULL;
    size_t vlen = 0;
    CHECK(gl_status_metadata_at(&st, 0, &key, &val, &vlen) == 0 && strcmp(key, GL_MD_TX_LOCATION) == 0);
    CHECK(gl_status_metadata_at(&st, 1, &key, &val, &vlen) == -1);
    CHECK(gl_status_metadata_get(&st, GL_MD_TX_LOCATION, &val, &vlen) == 1 && vlen > 0);
    CHECK(gl_status_metadata_get(&st, "gridledger-other", NULL, NULL) == 0);
    gl_status copy = st; /* a plain value */
    CHECK(gl_status_tx_location(&copy, &loc) == 1);
    CHECK(loc != NULL && loc->height == h0 + 1 && loc->index == 0 && loc->tx_id.len == GL_TX_ID_LEN &&
          memcmp(loc->tx_id.data, id, GL_TX_ID_LEN) == 0);
    /* A later call's status carries its own (no) metadata. */
    expect_serving(c);

    /* GetBlock by height, then by the hash it reported. */
    CHECK(gl_get_block(c, h0 + 1, NULL, 0, 2000, &gb, &st) == GL_OK);
    CHECK(gb != NULL && gb->block != NULL && gb->block->header != NULL &&
          gb->block->header->height == h0 + 1 && gb->block->n_transactions == 1);
    CHECK(gl_block_verify(gb, err, sizeof err) == 0);
    CHECK(gb != NULL && loc != NULL && gb->hash.len == loc->block_hash.len &&
          memcmp(gb->hash.data, loc->block_hash.data, gb->hash.len) == 0);
    if (gb != NULL) {
        CHECK(gl_get_block(c, 0, gb->hash.data, gb->hash.len, 2000, &gb2, &st) == GL_OK);
        CHECK(gb2 != NULL && gb2->block->header->height == h0 + 1);
    }
    CHECK(gl_get_block(c, 1000000, NULL, 0, 2000, NULL, &st) == GL_NOT_FOUND);

    CHECK(gl_get_transaction(c, id, sizeof id, 2000, &gt, &st) == GL_OK);
    CHECK(gt != NULL && gt->transaction != NULL && gt->transaction->payload.len == tx.payload.len &&
          memcmp(gt->transaction->payload.data, tx.payload.data, tx.payload.len) == 0);
    CHECK(gt != NULL && gt->location != NULL && gt->location->height == h0 + 1);
    CHECK(gt != NULL && gl_verify_transaction(gt->transaction, err, sizeof err) == 0);

    /* SubscribeBlocks from h0: h0, h0+1, then a block made while subscribed. */
    gl_stream *sub = gl_subscribe_blocks(c, h0, 5000, &st);
    CHECK(sub != NULL);
    if (sub != NULL) {
        Gridledger__GetBlockResponse *b = NULL;
        for (uint64_t want = h0; want <= h0 + 1; want++) {
            CHECK(gl_subscribe_blocks_next(sub, &b, &st) == 1);
            CHECK(b != NULL && b->block->header->height == want);
            if (b != NULL)
                gridledger__get_block_response__free_unpacked(b, NULL);
            b = NULL;
        }
        gl_stream_free(sub); /* cancels */
    }
    expect_serving(c);
end:
    if (loc != NULL)
        gridledger__tx_location__free_unpacked(loc, NULL);
    if (gt != NULL)
        gridledger__get_transaction_response__free_unpacked(gt, NULL);
    if (gb2 != NULL)
        gridledger__get_block_response__free_unpacked(gb2, NULL);
    if (gb != NULL)
        gridledger__get_block_response__free_unpacked(gb, NULL);
    if (sr != NULL)
        gridledger__submit_response__free_unpacked(sr, NULL);
    if (ci != NULL)
        gridledger__chain_info__free_unpacked(ci, NULL);
    gl_signed_transaction_clear(&tx);
    gl_signer_free(sg);
    gl_close(c);
}

/* Submitting: RESOURCE_EXHAUSTED (queue full) leaves the transaction off the chain: the
 * same transaction is accepted later. A tampered signature is UNAUTHENTICATED; a collector
 * of another district is PERMISSION_DENIED. */
static void test_submit_refusals(void)
{
    char err[512];
    gl_client *c = connect_as("col2", "ca.crt", NULL, port, err, sizeof err);
    gl_signer *s1 = load_signer("col1"), *s2 = load_signer("col2");
    gl_status st;
    Gridledger__SignedTransaction tx;
    uint8_t id[GL_TX_ID_LEN];

    gridledger__signed_transaction__init(&tx);
    CHECK(c != NULL && s1 != NULL && s2 != NULL);
    if (c == NULL || s1 == NULL || s2 == NULL)
        goto end;
    CHECK(sign_one(s1, "busy-0", "n2", &tx, id) == 0);
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_RESOURCE_EXHAUSTED);
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_RESOURCE_EXHAUSTED);
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_OK);
    gl_signed_transaction_clear(&tx);

    CHECK(sign_one(s1, "lib-1", "n3", &tx, id) == 0);
    tx.signature.data[tx.signature.len - 1] ^= 1;
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_UNAUTHENTICATED);
    gl_signed_transaction_clear(&tx);

    CHECK(sign_one(s2, "lib-2", "n4", &tx, id) == 0);
    CHECK(gl_submit_readings(c, &tx, 10000, NULL, &st) == GL_PERMISSION_DENIED);
    CHECK(strstr(st.message, "d2") != NULL);
end:
    gl_signed_transaction_clear(&tx);
    gl_signer_free(s1);
    gl_signer_free(s2);
    gl_close(c);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_client DIR PORT BADROLE_PORT\n");
        return 64;
    }
    dir = argv[1];
    port = (uint16_t)atoi(argv[2]);
    badrole_port = (uint16_t)atoi(argv[3]);
    signal(SIGPIPE, SIG_IGN);
    run("GetStatus as ops", test_get_status);
    run("GetStatus as collector is PERMISSION_DENIED", test_permission_denied);
    run("server PING is answered with ACK", test_ping);
    run("oversized response is RESOURCE_EXHAUSTED, connection survives", test_oversized_response);
    run("deadline is enforced locally", test_deadline);
    run("bad unary responses, unknown service/method", test_bad_unary_responses);
    run("Health/Watch server stream", test_watch);
    run("GOAWAY fails new calls UNAVAILABLE", test_goaway);
    run("idle GOAWAY between calls fails the next call fast", test_idle_goaway);
    run("TLS verification", test_tls_verification);
    run("bidirectional: read before close_send, then END frame", test_bidi_read_before_close);
    run("bidirectional: END_STREAM on the last buffered MESSAGE", test_bidi_end_stream_on_message);
    run("chain services, ALREADY_EXISTS trailer metadata", test_chain_services);
    run("submit refusals: queue full, bad signature, other district", test_submit_refusals);
    return check_report();
}
