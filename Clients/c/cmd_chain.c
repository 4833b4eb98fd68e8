/*
 * gridctl's node and chain commands: status, health, watch-health (Ops, Health), chain,
 * block, tx, state, watch (Query), prove (ProveBlock) and verify-proof (offline).
 */
#include "gridctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- printing messages ------------------------------------------------------------------ */

static void print_status(const Gridledger__GetStatusResponse *r)
{
    jw w;
    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_kstr(&w, "node_id", r->node_id);
    jw_kstr(&w, "version", r->version);
    jw_ku64(&w, "uptime_ms", r->uptime_ms);
    jw_kstr(&w, "listen_address", r->listen_address);
    jw_key(&w, "caller");
    if (r->caller == NULL) {
        jw_null(&w);
    } else {
        jw_open(&w, '{');
        jw_kstr(&w, "name", r->caller->name);
        jw_kstr(&w, "role", r->caller->role);
        jw_kstr(&w, "district", r->caller->district);
        jw_kstr(&w, "serial", r->caller->serial);
        jw_close(&w, '}');
    }
    jw_ku64(&w, "open_connections", r->open_connections);
    jw_ku64(&w, "calls_served", r->calls_served);
    jw_ku64(&w, "calls_failed", r->calls_failed);
    jw_ku64(&w, "started_at_unix_ms", r->started_at_unix_ms);
    jw_key(&w, "chains");
    jw_open(&w, '[');
    for (size_t i = 0; i < r->n_chains; i++) {
        const Gridledger__ChainStatus *ch = r->chains[i];
        jw_open(&w, '{');
        jw_kstr(&w, "chain_id", ch->chain_id);
        jw_ku64(&w, "height", ch->height);
        jw_kbytes(&w, "head_hash", ch->head_hash);
        jw_kstr(&w, "role", ch->role);
        jw_ku64(&w, "pending_transactions", ch->pending_transactions);
        jw_key(&w, "transactions_per_second");
        jw_double(&w, ch->transactions_per_second);
        jw_key(&w, "readings_per_second");
        jw_double(&w, ch->readings_per_second);
        jw_ku64(&w, "store_bytes", ch->store_bytes);
        jw_ku64(&w, "total_transactions", ch->total_transactions);
        jw_ku64(&w, "raft_node_id", ch->raft_node_id);
        jw_ku64(&w, "raft_term", ch->raft_term);
        jw_ku64(&w, "raft_leader", ch->raft_leader);
        jw_ku64(&w, "raft_commit", ch->raft_commit);
        jw_ku64(&w, "raft_applied", ch->raft_applied);
        jw_key(&w, "raft_peers");
        jw_open(&w, '[');
        for (size_t k = 0; k < ch->n_raft_peers; k++) {
            const Gridledger__RaftPeerStatus *p = ch->raft_peers[k];
            jw_open(&w, '{');
            jw_ku64(&w, "node_id", p->node_id);
            jw_ku64(&w, "match_index", p->match_index);
            jw_ku64(&w, "lag", p->lag);
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
        jw_kstr(&w, "halted", ch->halted);
        jw_ku64(&w, "anchored_height", ch->anchored_height);
        jw_ku64(&w, "anchor_lag_blocks", ch->anchor_lag_blocks);
        jw_ku64(&w, "anchor_lag_ms", ch->anchor_lag_ms);
        jw_ku64(&w, "downlink_main_height", ch->downlink_main_height);
        jw_kstr(&w, "sync_error", ch->sync_error);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
}

static void print_health(Gridledger__ServingStatus s)
{
    jw w;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    jw_kstr(&w, "status", gl_serving_status_name(s));
    jw_close(&w, '}');
}

/* The header's fields; the height first unless with_height is 0. */
static void print_header_fields(jw *w, const Gridledger__BlockHeader *h, int with_height)
{
    if (with_height)
        jw_ku64(w, "height", h->height);
    jw_kstr(w, "chain_id", h->chain_id);
    jw_kbytes(w, "previous_hash", h->previous_hash);
    jw_ki64(w, "timestamp_ms", h->timestamp_ms);
    jw_kbytes(w, "tx_root", h->tx_root);
    jw_kbytes(w, "state_root", h->state_root);
    jw_kstr(w, "proposer", h->proposer);
    jw_ku64(w, "tx_count", h->tx_count);
    jw_kstr(w, "hash_suite", h->hash_suite);
}

static void print_outcome(jw *w, const Gridledger__TxOutcome *o)
{
    if (o == NULL) {
        jw_null(w);
        return;
    }
    jw_open(w, '{');
    jw_ku64(w, "code", o->code);
    jw_kstr(w, "status", gl_status_code_name((int)o->code));
    jw_kstr(w, "message", o->message);
    jw_ku64(w, "readings_accepted", o->readings_accepted);
    jw_ku64(w, "readings_duplicate", o->readings_duplicate);
    jw_close(w, '}');
}

static void print_signer(jw *w, ProtobufCBinaryData der)
{
    gl_party p;
    char err[200];
    if (gl_party_from_der(der.data, der.len, &p, err, sizeof err) != 0) {
        jw_open(w, '{');
        jw_kstr(w, "error", err);
        jw_close(w, '}');
        return;
    }
    jw_open(w, '{');
    jw_kstr(w, "name", p.name);
    jw_kstr(w, "role", p.role);
    jw_kstr(w, "district", p.district);
    jw_close(w, '}');
}

static void print_reading(jw *w, const Gridledger__Reading *r)
{
    jw_open(w, '{');
    jw_kstr(w, "meter_id", r->meter_id);
    jw_ki64(w, "timestamp_ms", r->timestamp_ms);
    jw_ku64(w, "energy_total", r->energy_total);
    jw_ku64(w, "energy_sharp", r->energy_sharp);
    jw_ku64(w, "energy_peak", r->energy_peak);
    jw_ku64(w, "energy_flat", r->energy_flat);
    jw_ku64(w, "energy_valley", r->energy_valley);
    jw_ku64(w, "energy_reverse", r->energy_reverse);
    jw_key(w, "voltage_dv");
    jw_open(w, '[');
    for (size_t i = 0; i < r->n_voltage_dv; i++)
        jw_u64(w, r->voltage_dv[i]);
    jw_close(w, ']');
    jw_key(w, "current_ma");
    jw_open(w, '[');
    for (size_t i = 0; i < r->n_current_ma; i++)
        jw_i64(w, r->current_ma[i]);
    jw_close(w, ']');
    jw_ki64(w, "active_power_w", r->active_power_w);
    jw_ki64(w, "reactive_power_var", r->reactive_power_var);
    jw_ku64(w, "events", r->events);
    jw_close(w, '}');
}

/*
 * The payload of a transaction: its envelope, and for readings the batch. `full` adds the
 * first reading. Bytes that do not decode are reported as {"error": ...}.
 */
static void print_payload(jw *w, ProtobufCBinaryData bytes, int full)
{
    Gridledger__TxPayload *p = gridledger__tx_payload__unpack(NULL, bytes.len, bytes.data);
    jw_open(w, '{');
    if (p == NULL) {
        jw_kstr(w, "error", "payload does not decode as gridledger.TxPayload");
        jw_close(w, '}');
        return;
    }
    jw_kstr(w, "chain_id", p->chain_id);
    jw_ki64(w, "created_ms", p->created_ms);
    jw_kstr(w, "nonce", p->nonce);
    if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_READINGS && p->readings != NULL) {
        const Gridledger__ReadingBatch *b = p->readings;
        jw_kstr(w, "kind", "readings");
        jw_kstr(w, "district", b->district);
        jw_kstr(w, "batch_id", b->batch_id);
        jw_ku64(w, "readings_count", b->n_readings);
        if (full) {
            jw_key(w, "first_reading");
            if (b->n_readings > 0)
                print_reading(w, b->readings[0]);
            else
                jw_null(w);
        }
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_DISTRICT_REGISTRATION && p->district_registration != NULL) {
        jw_kstr(w, "kind", "district_registration");
        jw_kstr(w, "district", p->district_registration->district);
        jw_ku64(w, "members", p->district_registration->n_member_certificates);
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_ANCHOR && p->anchor != NULL) {
        jw_kstr(w, "kind", "anchor");
        jw_kstr(w, "district", p->anchor->district);
        jw_ku64(w, "from_height", p->anchor->from_height);
        jw_ku64(w, "to_height", p->anchor->to_height);
        jw_ku64(w, "signatures", p->anchor->n_signatures);
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_PARAMETER && p->parameter != NULL) {
        jw_kstr(w, "kind", "parameter");
        jw_kstr(w, "district", p->parameter->district);
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_ANCHOR_RECEIPT && p->anchor_receipt != NULL) {
        jw_kstr(w, "kind", "anchor_receipt");
        jw_ku64(w, "from_height", p->anchor_receipt->from_height);
        jw_ku64(w, "to_height", p->anchor_receipt->to_height);
        jw_ku64(w, "main_height", p->anchor_receipt->main_height);
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_DOWNLINK && p->downlink != NULL) {
        jw_kstr(w, "kind", "downlink");
        jw_ku64(w, "main_height", p->downlink->main_height);
        jw_ku64(w, "main_index", p->downlink->main_index);
    } else if (p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY_COMMAND_ACK && p->command_ack != NULL) {
        jw_kstr(w, "kind", "command_ack");
        jw_kstr(w, "command_id", p->command_ack->command_id);
        jw_kbool(w, "success", p->command_ack->success);
    } else {
        jw_kstr(w, "kind", p->body_case == GRIDLEDGER__TX_PAYLOAD__BODY__NOT_SET ? "none" : "unknown");
    }
    jw_close(w, '}');
    gridledger__tx_payload__free_unpacked(p, NULL);
}

static void print_location(jw *w, const Gridledger__TxLocation *l)
{
    if (l == NULL) {
        jw_null(w);
        return;
    }
    jw_open(w, '{');
    jw_ku64(w, "height", l->height);
    jw_ku64(w, "index", l->index);
    jw_kbytes(w, "tx_id", l->tx_id);
    jw_kbytes(w, "block_hash", l->block_hash);
    jw_close(w, '}');
}

/* The transaction's id (SHA-256 of its payload) in hex, or null without a transaction. */
static void print_tx_id(jw *w, const Gridledger__SignedTransaction *t)
{
    uint8_t id[GL_TX_ID_LEN];
    if (t != NULL && gl_tx_id(t->payload.data, t->payload.len, id) == 0)
        jw_hex(w, id, sizeof id);
    else
        jw_null(w);
}

static void print_block(const Gridledger__GetBlockResponse *r)
{
    jw w;
    char why[300];
    const Gridledger__Block *b = r->block;

    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_kbytes(&w, "hash", r->hash);
    jw_key(&w, "header");
    if (b == NULL || b->header == NULL) {
        jw_null(&w);
    } else {
        jw_open(&w, '{');
        print_header_fields(&w, b->header, 1);
        jw_close(&w, '}');
    }
    int verified = gl_block_verify(r, why, sizeof why) == 0;
    jw_kbool(&w, "verified", verified);
    if (!verified)
        jw_kstr(&w, "verify_error", why);
    jw_key(&w, "transactions");
    jw_open(&w, '[');
    for (size_t i = 0; b != NULL && i < b->n_transactions; i++) {
        const Gridledger__SignedTransaction *t = b->transactions[i];
        jw_open(&w, '{');
        jw_ku64(&w, "index", i);
        jw_key(&w, "tx_id");
        print_tx_id(&w, t);
        jw_key(&w, "signer");
        print_signer(&w, t->signer_certificate);
        jw_key(&w, "payload");
        print_payload(&w, t->payload, 0);
        jw_key(&w, "outcome");
        print_outcome(&w, i < b->n_outcomes ? b->outcomes[i] : NULL);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
}

static void print_transaction(const Gridledger__GetTransactionResponse *r)
{
    jw w;
    char why[300];
    const Gridledger__SignedTransaction *t = r->transaction;

    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_key(&w, "tx_id");
    print_tx_id(&w, t);
    jw_key(&w, "location");
    print_location(&w, r->location);
    jw_key(&w, "outcome");
    print_outcome(&w, r->outcome);
    if (t != NULL) {
        int ok = gl_verify_transaction(t, why, sizeof why) == 0;
        jw_kbool(&w, "signature_valid", ok);
        if (!ok)
            jw_kstr(&w, "signature_error", why);
        jw_key(&w, "signer");
        print_signer(&w, t->signer_certificate);
        jw_key(&w, "payload");
        print_payload(&w, t->payload, 1);
    }
    jw_close(&w, '}');
}

/* 1 when `key` starts with `prefix` and has at least one character after it and no '/'
 * in that rest (unless rest_may_slash). */
static int key_is(const char *key, const char *prefix, int allow_empty, int rest_may_slash)
{
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0)
        return 0;
    const char *rest = key + n;
    if (*rest == 0)
        return allow_empty;
    return rest_may_slash || strchr(rest, '/') == NULL;
}

/* The message a state value of `key` holds (Docs/anchoring.md "State keys",
 * Docs/contracts.md), or NULL: uplink/<d>/totals, uplink/<d>/account/<a>, district/<d>,
 * receipt/last and receipt/<20 digits>, customer/, tariff/, thresholds/, account/,
 * command/, notice/, payment/. */
static const ProtobufCMessageDescriptor *state_descriptor(const char *key)
{
    if (strncmp(key, "uplink/", 7) == 0) {
        const char *d = key + 7, *slash = strchr(d, '/');
        if (slash == NULL || slash == d)
            return NULL;
        if (strcmp(slash, "/totals") == 0)
            return &gridledger__uplink_summary__descriptor;
        if (strncmp(slash, "/account/", 9) == 0 && slash[9] != 0)
            return &gridledger__account_result__descriptor;
        return NULL;
    }
    if (strcmp(key, "receipt/last") == 0)
        return &gridledger__anchor_receipt__descriptor;
    if (strncmp(key, "receipt/", 8) == 0 && strlen(key + 8) == 20 &&
        strspn(key + 8, "0123456789") == 20)
        return &gridledger__anchor_receipt__descriptor;
    static const struct {
        const char *prefix;
        int allow_empty;
        const ProtobufCMessageDescriptor *d;
    } t[] = {
        {"district/", 0, &gridledger__district_registration__descriptor},
        {"customer/", 0, &gridledger__customer_archive__descriptor},
        {"tariff/", 0, &gridledger__tariff__descriptor},
        {"thresholds/", 1, &gridledger__fee_control_thresholds__descriptor},
        {"account/", 0, &gridledger__account__descriptor},
        {"command/", 0, &gridledger__control_command__descriptor},
        {"notice/", 0, &gridledger__notice__descriptor},
        {"payment/", 0, &gridledger__payment__descriptor},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (key_is(key, t[i].prefix, t[i].allow_empty, 0))
            return t[i].d;
    return NULL;
}

/* "decoded_as" and "decoded" for a value of a known key that decodes; nothing otherwise. */
static void print_decoded_value(jw *w, const char *key, ProtobufCBinaryData value)
{
    const ProtobufCMessageDescriptor *d = state_descriptor(key);
    if (d == NULL || value.len == 0)
        return;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, value.len, value.data);
    if (m == NULL)
        return;
    jw_kstr(w, "decoded_as", d->name);
    jw_key(w, "decoded");
    jw_message(w, m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void print_state(const char *key, const Gridledger__GetStateResponse *r)
{
    jw w;
    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_kstr(&w, "key", key);
    jw_kbool(&w, "found", r->found);
    jw_kbytes(&w, "value", r->value);
    if (r->found)
        print_decoded_value(&w, key, r->value);
    jw_key(&w, "version");
    if (r->version == NULL) {
        jw_null(&w);
    } else {
        jw_open(&w, '{');
        jw_ku64(&w, "height", r->version->height);
        jw_ku64(&w, "tx_index", r->version->tx_index);
        jw_close(&w, '}');
    }
    jw_close(&w, '}');
}

static void print_block_line(const Gridledger__GetBlockResponse *r)
{
    jw w;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    if (r->block != NULL && r->block->header != NULL) {
        jw_ku64(&w, "height", r->block->header->height);
        jw_kbytes(&w, "hash", r->hash);
        print_header_fields(&w, r->block->header, 0);
    } else {
        jw_kbytes(&w, "hash", r->hash);
    }
    jw_close(&w, '}');
}

/* Exactly `len` bytes of hex (either case). */
static int parse_hex(const char *s, uint8_t *out, size_t len)
{
    if (s == NULL || strlen(s) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[2 * i + (size_t)k];
            int d = ch >= '0' && ch <= '9' ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* ---- commands --------------------------------------------------------------------------- */

static Gridledger__Consistency consistency(const app *a)
{
    return a->opt[OPT_LINEARIZABLE] != NULL ? GRIDLEDGER__CONSISTENCY__CONSISTENCY_LINEARIZABLE
                                            : GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL;
}

int cmd_status(app *a)
{
    Gridledger__GetStatusResponse *r = NULL;
    if (gl_get_status(a->client, a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    print_status(r);
    gridledger__get_status_response__free_unpacked(r, NULL);
    return flush_stdout();
}

int cmd_health(app *a)
{
    Gridledger__ServingStatus s = GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_UNKNOWN;
    if (gl_health_check(a->client, a->npos > 1 ? a->pos[1] : "", a->timeout, &s, &a->st) != GL_OK)
        return rpc_error(&a->st);
    print_health(s);
    return flush_stdout();
}

int cmd_watch_health(app *a)
{
    Gridledger__ServingStatus s;
    int rc = 0;
    gl_stream *w = gl_health_watch(a->client, a->npos > 1 ? a->pos[1] : "", a->timeout, &a->st);
    if (w == NULL)
        return rpc_error(&a->st);
    while (gl_health_watch_next(w, &s, &a->st) == 1) {
        print_health(s);
        if ((rc = flush_stdout()) != 0)
            goto end;
    }
    if (a->st.code != GL_OK)
        rc = rpc_error(&a->st);
end:
    gl_stream_free(w);
    return rc;
}

int cmd_chain(app *a)
{
    Gridledger__ChainInfo *ci = NULL;
    jw w;
    if (gl_get_chain_info(a->client, a->timeout, &ci, &a->st) != GL_OK)
        return rpc_error(&a->st);
    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_kstr(&w, "chain_id", ci->chain_id);
    jw_ku64(&w, "height", ci->height);
    jw_kbytes(&w, "head_hash", ci->head_hash);
    jw_kstr(&w, "hash_suite", ci->hash_suite);
    jw_close(&w, '}');
    gridledger__chain_info__free_unpacked(ci, NULL);
    return flush_stdout();
}

int cmd_block(app *a)
{
    Gridledger__GetBlockResponse *r = NULL;
    uint8_t hash[32];
    unsigned long long height = 0;

    if (a->opt[OPT_HASH] != NULL) {
        if (a->npos > 1)
            return usage("block takes a HEIGHT or --hash HEX, not both");
        if (parse_hex(a->opt[OPT_HASH], hash, sizeof hash) != 0)
            return usage("--hash %s is not 64 hex digits", a->opt[OPT_HASH]);
    } else if (a->npos != 2 || parse_u64(a->pos[1], UINT64_MAX, &height) != 0) {
        return usage("block needs a HEIGHT (a number) or --hash HEX");
    }
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_get_block_ex(a->client, height, a->opt[OPT_HASH] != NULL ? hash : NULL, sizeof hash,
                        consistency(a), a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    print_block(r);
    gridledger__get_block_response__free_unpacked(r, NULL);
    return flush_stdout();
}

int cmd_tx(app *a)
{
    Gridledger__GetTransactionResponse *r = NULL;
    uint8_t id[GL_TX_ID_LEN];
    if (a->npos != 2 || parse_hex(a->pos[1], id, sizeof id) != 0)
        return usage("tx needs a transaction id of 64 hex digits");
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_get_transaction_ex(a->client, id, sizeof id, consistency(a), a->timeout, &r, &a->st) !=
        GL_OK)
        return rpc_error(&a->st);
    print_transaction(r);
    gridledger__get_transaction_response__free_unpacked(r, NULL);
    return flush_stdout();
}

int cmd_state(app *a)
{
    Gridledger__GetStateResponse *r = NULL;
    if (a->npos != 2 || a->pos[1][0] == 0)
        return usage("state needs a KEY");
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_get_state(a->client, a->pos[1], consistency(a), a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    print_state(a->pos[1], r);
    gridledger__get_state_response__free_unpacked(r, NULL);
    return flush_stdout();
}

int cmd_watch(app *a)
{
    unsigned long long from = 0, count = 0, seen = 0;
    int rc = 0;
    gl_stream *s = NULL;
    Gridledger__GetBlockResponse *r = NULL;

    if (a->npos > 1)
        return usage("watch takes no arguments besides --from and --count");
    if (a->opt[OPT_FROM] != NULL && parse_u64(a->opt[OPT_FROM], UINT64_MAX, &from) != 0)
        return usage("--from %s is not a block height", a->opt[OPT_FROM]);
    if (a->opt[OPT_COUNT] != NULL && (parse_u64(a->opt[OPT_COUNT], UINT64_MAX, &count) != 0 || count == 0))
        return usage("--count %s is not a positive number", a->opt[OPT_COUNT]);
    if (connect_app(a) != 0)
        return EXIT_RPC;
    for (;;) {
        unsigned long long got = 0;
        s = gl_subscribe_blocks(a->client, from, a->timeout, &a->st);
        if (s == NULL)
            return rpc_error(&a->st);
        while (gl_subscribe_blocks_next(s, &r, &a->st) == 1) {
            print_block_line(r);
            if (r->block != NULL && r->block->header != NULL)
                from = r->block->header->height + 1;
            gridledger__get_block_response__free_unpacked(r, NULL);
            r = NULL;
            got++;
            if ((rc = flush_stdout()) != 0)
                goto end;
            if (count != 0 && ++seen >= count)
                goto end; /* gl_stream_free cancels the subscription */
        }
        /* Cut off for falling behind: subscribe again from the next height. */
        if (a->st.code == GL_RESOURCE_EXHAUSTED && got > 0) {
            fprintf(stderr, "gridctl: subscription cut off (%s); resubscribing from %llu\n",
                    a->st.message, from);
            gl_stream_free(s);
            s = NULL;
            continue;
        }
        if (a->st.code != GL_OK)
            rc = rpc_error(&a->st);
        break;
    }
end:
    gl_stream_free(s);
    return rc;
}

/* ---- proofs ---------------------------------------------------------------------- */

#define EXIT_PROOF 1 /* verify-proof / prove --verify: the proof does not verify */
#define MAX_PROOF_BYTES (64u * 1024u * 1024u)

/* Reads all of `path` ("-" = stdin) into a malloc'd buffer. 0, or an exit status after
 * reporting. */
static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_NOINPUT;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            uint8_t *nb = ncap <= MAX_PROOF_BYTES ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                fprintf(stderr, "error: %s is larger than %u bytes or memory ran out\n", path,
                        MAX_PROOF_BYTES);
                free(buf);
                if (f != stdin)
                    fclose(f);
                return EXIT_DATAERR;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "error: reading %s failed\n", path);
        free(buf);
        return EXIT_IO;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Verifies proof bytes and prints the result (pretty JSON) or the reason: 0 or EXIT_PROOF. */
static int verify_and_print(const uint8_t *proof, size_t len, const char *ca)
{
    gl_proof_result r;
    char err[600];
    jw w;
    if (gl_verify_proof(proof, len, ca, &r, err, sizeof err) != 0) {
        fprintf(stderr, "error: proof does not verify: %s\n", err);
        return EXIT_PROOF;
    }
    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_kbool(&w, "verified", 1);
    jw_kstr(&w, "district", r.district);
    jw_ku64(&w, "height", r.height);
    jw_key(&w, "header_hash");
    jw_hex(&w, r.header_hash, r.header_hash_len);
    jw_ku64(&w, "anchor_from", r.anchor_from);
    jw_ku64(&w, "anchor_to", r.anchor_to);
    jw_kstr(&w, "main_chain", r.main_chain);
    jw_ku64(&w, "main_height", r.main_height);
    jw_ku64(&w, "main_index", r.main_index);
    jw_key(&w, "main_block_hash");
    jw_hex(&w, r.main_block_hash, r.main_block_hash_len);
    jw_ku64(&w, "signatures_verified", r.signatures_verified);
    jw_close(&w, '}');
    return flush_stdout();
}

/* verify-proof FILE [--ca CA.pem]: offline. */
int cmd_verify_proof(app *a)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;
    if (a->npos != 2)
        return usage("verify-proof needs a FILE (a serialized gridledger.BlockProof, - = stdin)");
    if ((rc = read_all(a->pos[1], &buf, &len)) != 0)
        return rc;
    rc = verify_and_print(buf, len, a->opt[OPT_CA]);
    free(buf);
    return rc;
}

/* prove HEIGHT [--out FILE] [--verify] [--chain ID] */
int cmd_prove(app *a)
{
    unsigned long long height = 0;
    Gridledger__BlockProof *p = NULL;
    uint8_t *buf = NULL;
    int rc = 0;

    if (a->npos != 2 || parse_u64(a->pos[1], UINT64_MAX, &height) != 0)
        return usage("prove needs a HEIGHT (a number)");
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_prove_block(a->client, height, a->timeout, &p, &a->st) != GL_OK)
        return rpc_error(&a->st);
    size_t len = gridledger__block_proof__get_packed_size(p);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
        goto end;
    }
    gridledger__block_proof__pack(p, buf);
    if (a->opt[OPT_OUT] != NULL || a->opt[OPT_VERIFY] == NULL) {
        FILE *f = a->opt[OPT_OUT] != NULL ? fopen(a->opt[OPT_OUT], "wb") : stdout;
        if (f == NULL || fwrite(buf, 1, len, f) != len || (f != stdout ? fclose(f) : fflush(f)) != 0) {
            fprintf(stderr, "error: cannot write the proof to %s: %s\n",
                    a->opt[OPT_OUT] != NULL ? a->opt[OPT_OUT] : "stdout", strerror(errno));
            rc = EXIT_IO;
            goto end;
        }
    }
    if (a->opt[OPT_VERIFY] != NULL)
        rc = verify_and_print(buf, len, a->opt[OPT_CA]);
end:
    free(buf);
    gridledger__block_proof__free_unpacked(p, NULL);
    return rc;
}
