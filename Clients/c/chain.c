/*
 * chain.c - typed wrappers of the chain services (Docs/wire-protocol.md, "Chain
 * services") and block checks. Every wrapper is a gl_unary / gl_stream call; see
 * gridledger.h for the contracts.
 *
 * Block hashes, as the node computes them (Sources/ChainHashing/ChainHashing.swift):
 *
 *   header-hash = H(serialized BlockHeader)
 *   tx-id       = H(TxPayload bytes as signed)
 *   tx-root     = merkle(tx-id ...)   leaf = H(0x00 || id), node = H(0x01 || left || right),
 *                                    an odd node is promoted unchanged; empty = H("")
 *   H           = SHA-256 (hash suite "sha256")
 */
#include "gridledger.h"
#include "gl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#define HASH_LEN 32

void gl_get_chain_info_request_init(Gridledger__GetChainInfoRequest *req, const char *chain_id)
{
    gridledger__get_chain_info_request__init(req);
    req->chain_id = gl_str(chain_id);
}

int gl_get_chain_info(gl_client *c, uint64_t timeout_ms, Gridledger__ChainInfo **out,
                      gl_status *status_out)
{
    Gridledger__GetChainInfoRequest req;
    gl_get_chain_info_request_init(&req, gl_client_chain_id(c));
    return gl_unary_as(c, "/gridledger.Query/GetChainInfo", &req.base, &gridledger__chain_info__descriptor,
                 (void **)out, timeout_ms, status_out);
}

void gl_submit_request_init(Gridledger__SubmitRequest *req, const char *chain_id,
                            const Gridledger__SignedTransaction *tx)
{
    gridledger__submit_request__init(req);
    /* Packing reads the transaction only. */
    req->transaction = (Gridledger__SignedTransaction *)tx;
    req->chain_id = gl_str(chain_id);
}

static int submit(gl_client *c, const char *method, const Gridledger__SignedTransaction *tx,
                  uint64_t timeout_ms, Gridledger__SubmitResponse **out, gl_status *status_out)
{
    Gridledger__SubmitRequest req;
    gl_submit_request_init(&req, gl_client_chain_id(c), tx);
    return gl_unary_as(c, method, &req.base, &gridledger__submit_response__descriptor, (void **)out,
                 timeout_ms, status_out);
}

int gl_submit_readings(gl_client *c, const Gridledger__SignedTransaction *tx,
                       uint64_t timeout_ms, Gridledger__SubmitResponse **out,
                       gl_status *status_out)
{
    return submit(c, "/gridledger.Ingest/SubmitReadings", tx, timeout_ms, out, status_out);
}

int gl_submit(gl_client *c, const Gridledger__SignedTransaction *tx, uint64_t timeout_ms,
              Gridledger__SubmitResponse **out, gl_status *status_out)
{
    return submit(c, "/gridledger.Ingest/Submit", tx, timeout_ms, out, status_out);
}

int gl_status_tx_location(const gl_status *st, Gridledger__TxLocation **out)
{
    const uint8_t *v = NULL;
    size_t vlen = 0;
    if (out != NULL)
        *out = NULL;
    if (!gl_status_metadata_get(st, GL_MD_TX_LOCATION, &v, &vlen))
        return 0;
    Gridledger__TxLocation *loc = gridledger__tx_location__unpack(NULL, vlen, v);
    if (loc == NULL)
        return -1;
    if (out != NULL)
        *out = loc;
    else
        gridledger__tx_location__free_unpacked(loc, NULL);
    return 1;
}

int gl_get_block(gl_client *c, uint64_t height, const uint8_t *hash, size_t hash_len,
                 uint64_t timeout_ms, Gridledger__GetBlockResponse **out,
                 gl_status *status_out)
{
    return gl_get_block_ex(c, height, hash, hash_len, GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL,
                           timeout_ms, out, status_out);
}

void gl_get_block_request_init(Gridledger__GetBlockRequest *req, const char *chain_id,
                               uint64_t height, const uint8_t *hash, size_t hash_len,
                               Gridledger__Consistency consistency)
{
    gridledger__get_block_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->consistency = consistency;
    if (hash != NULL) {
        req->hash.data = (uint8_t *)hash;
        req->hash.len = hash_len;
    } else {
        req->height = height;
        req->by_height = 1;
    }
}

int gl_get_block_ex(gl_client *c, uint64_t height, const uint8_t *hash, size_t hash_len,
                    Gridledger__Consistency consistency, uint64_t timeout_ms,
                    Gridledger__GetBlockResponse **out, gl_status *status_out)
{
    Gridledger__GetBlockRequest req;
    gl_get_block_request_init(&req, gl_client_chain_id(c), height, hash, hash_len, consistency);
    return gl_unary_as(c, "/gridledger.Query/GetBlock", &req.base,
                 &gridledger__get_block_response__descriptor, (void **)out, timeout_ms, status_out);
}

int gl_get_transaction(gl_client *c, const uint8_t *tx_id, size_t tx_id_len,
                       uint64_t timeout_ms, Gridledger__GetTransactionResponse **out,
                       gl_status *status_out)
{
    return gl_get_transaction_ex(c, tx_id, tx_id_len, GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL,
                                 timeout_ms, out, status_out);
}

void gl_get_transaction_request_init(Gridledger__GetTransactionRequest *req,
                                     const char *chain_id, const uint8_t *tx_id,
                                     size_t tx_id_len, Gridledger__Consistency consistency)
{
    gridledger__get_transaction_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->consistency = consistency;
    req->tx_id.data = (uint8_t *)tx_id;
    req->tx_id.len = tx_id != NULL ? tx_id_len : 0;
}

int gl_get_transaction_ex(gl_client *c, const uint8_t *tx_id, size_t tx_id_len,
                          Gridledger__Consistency consistency, uint64_t timeout_ms,
                          Gridledger__GetTransactionResponse **out, gl_status *status_out)
{
    Gridledger__GetTransactionRequest req;
    gl_get_transaction_request_init(&req, gl_client_chain_id(c), tx_id, tx_id_len, consistency);
    return gl_unary_as(c, "/gridledger.Query/GetTransaction", &req.base,
                 &gridledger__get_transaction_response__descriptor, (void **)out, timeout_ms,
                 status_out);
}

void gl_get_state_request_init(Gridledger__GetStateRequest *req, const char *chain_id,
                               const char *key, Gridledger__Consistency consistency)
{
    gridledger__get_state_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->key = gl_str(key);
    req->consistency = consistency;
}

int gl_get_state(gl_client *c, const char *key, Gridledger__Consistency consistency,
                 uint64_t timeout_ms, Gridledger__GetStateResponse **out, gl_status *status_out)
{
    Gridledger__GetStateRequest req;
    gl_get_state_request_init(&req, gl_client_chain_id(c), key, consistency);
    return gl_unary_as(c, "/gridledger.Query/GetState", &req.base,
                 &gridledger__get_state_response__descriptor, (void **)out, timeout_ms, status_out);
}

void gl_get_history_request_init(Gridledger__GetHistoryRequest *req, const char *chain_id,
                                 const char *key, uint32_t limit,
                                 Gridledger__Consistency consistency)
{
    gridledger__get_history_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->key = gl_str(key);
    req->limit = limit;
    req->consistency = consistency;
}

int gl_get_history(gl_client *c, const char *key, uint32_t limit,
                   Gridledger__Consistency consistency, uint64_t timeout_ms,
                   Gridledger__GetHistoryResponse **out, gl_status *status_out)
{
    Gridledger__GetHistoryRequest req;
    gl_get_history_request_init(&req, gl_client_chain_id(c), key, limit, consistency);
    return gl_unary_as(c, "/gridledger.Query/GetHistory", &req.base,
                 &gridledger__get_history_response__descriptor, (void **)out, timeout_ms,
                 status_out);
}

void gl_subscribe_blocks_request_init(Gridledger__SubscribeBlocksRequest *req,
                                      const char *chain_id, uint64_t from_height)
{
    gridledger__subscribe_blocks_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->from_height = from_height;
}

gl_stream *gl_subscribe_blocks(gl_client *c, uint64_t from_height, uint64_t timeout_ms,
                               gl_status *status_out)
{
    Gridledger__SubscribeBlocksRequest req;
    gl_subscribe_blocks_request_init(&req, gl_client_chain_id(c), from_height);
    return gl_stream_open_with(c, "/gridledger.Query/SubscribeBlocks", &req.base,
                               &gridledger__get_block_response__descriptor, timeout_ms,
                               status_out);
}

int gl_subscribe_blocks_next(gl_stream *s, Gridledger__GetBlockResponse **out,
                             gl_status *status_out)
{
    return gl_stream_next_as(s, (void **)out, status_out);
}

/* ---- administration ------------------------------------------------------------------------ */

void gl_member_request_init(Gridledger__MemberRequest *req, const char *chain_id,
                            uint64_t node_id, const char *name, const char *address)
{
    gridledger__member_request__init(req);
    /* Packing only reads the strings. */
    req->chain_id = (char *)(chain_id != NULL ? chain_id : "");
    req->node_id = node_id;
    req->name = (char *)(name != NULL ? name : "");
    req->address = (char *)(address != NULL ? address : "");
}

static int admin(gl_client *c, const char *method, const char *chain_id, uint64_t node_id,
                 const char *name, const char *address, uint64_t timeout_ms,
                 Gridledger__MemberResponse **out, gl_status *status_out)
{
    Gridledger__MemberRequest req;
    gl_member_request_init(&req, chain_id, node_id, name, address);
    return gl_unary_as(c, method, &req.base, &gridledger__member_response__descriptor, (void **)out,
                 timeout_ms, status_out);
}

int gl_admin_transfer_leader(gl_client *c, const char *chain_id, uint64_t node_id,
                             uint64_t timeout_ms, Gridledger__MemberResponse **out,
                             gl_status *status_out)
{
    return admin(c, "/gridledger.Admin/TransferLeader", chain_id, node_id, NULL, NULL, timeout_ms,
                 out, status_out);
}

int gl_admin_add_member(gl_client *c, const char *chain_id, uint64_t node_id, const char *name,
                        const char *address, uint64_t timeout_ms,
                        Gridledger__MemberResponse **out, gl_status *status_out)
{
    return gl_admin_add_member_pinned(c, chain_id, node_id, name, address, NULL, timeout_ms, out,
                                      status_out);
}

int gl_admin_add_member_pinned(gl_client *c, const char *chain_id, uint64_t node_id,
                               const char *name, const char *address, const char *pin,
                               uint64_t timeout_ms, Gridledger__MemberResponse **out,
                               gl_status *status_out)
{
    Gridledger__MemberRequest req;
    gl_member_request_init(&req, chain_id, node_id, name, address);
    if (pin != NULL)
        req.public_key_sha256 = (char *)pin;
    return gl_unary_as(c, "/gridledger.Admin/AddMember", &req.base,
                       &gridledger__member_response__descriptor, (void **)out, timeout_ms,
                       status_out);
}

int gl_admin_promote_member(gl_client *c, const char *chain_id, uint64_t node_id,
                            uint64_t timeout_ms, Gridledger__MemberResponse **out,
                            gl_status *status_out)
{
    return admin(c, "/gridledger.Admin/PromoteMember", chain_id, node_id, NULL, NULL, timeout_ms,
                 out, status_out);
}

int gl_admin_remove_member(gl_client *c, const char *chain_id, uint64_t node_id,
                           uint64_t timeout_ms, Gridledger__MemberResponse **out,
                           gl_status *status_out)
{
    return admin(c, "/gridledger.Admin/RemoveMember", chain_id, node_id, NULL, NULL, timeout_ms,
                 out, status_out);
}

/* ---- block checks ------------------------------------------------------------------------ */

/* H(prefix || a || b); b may be NULL. 0 ok, -1 digest failure. */
static int hash3(uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                 uint8_t out[HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, &prefix, 1) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
             (b == NULL || EVP_DigestUpdate(ctx, b, blen) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == HASH_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

/* Merkle root of n tx ids (each HASH_LEN bytes, concatenated in `ids`). */
static int merkle_root(uint8_t *ids, size_t n, uint8_t out[HASH_LEN])
{
    if (n == 0)
        return gl_tx_id(NULL, 0, out); /* H("") */
    for (size_t i = 0; i < n; i++) {
        uint8_t leaf[HASH_LEN];
        if (hash3(0x00, ids + i * HASH_LEN, HASH_LEN, NULL, 0, leaf) != 0)
            return -1;
        memcpy(ids + i * HASH_LEN, leaf, HASH_LEN);
    }
    /* Each level is written over the front of the array. */
    while (n > 1) {
        size_t next = 0;
        for (size_t i = 0; i < n; i += 2) {
            uint8_t node[HASH_LEN];
            if (i + 1 < n) {
                if (hash3(0x01, ids + i * HASH_LEN, HASH_LEN, ids + (i + 1) * HASH_LEN, HASH_LEN,
                          node) != 0)
                    return -1;
            } else {
                memcpy(node, ids + i * HASH_LEN, HASH_LEN);
            }
            memcpy(ids + next * HASH_LEN, node, HASH_LEN);
            next++;
        }
        n = next;
    }
    memcpy(out, ids, HASH_LEN);
    return 0;
}

int gl_block_verify(const Gridledger__GetBlockResponse *r, char *err, size_t errlen)
{
    uint8_t *buf = NULL, *ids = NULL;
    uint8_t h[HASH_LEN];
    int rc = -1;

    if (r == NULL || r->block == NULL || r->block->header == NULL) {
        set_err(err, errlen, "response has no block header");
        goto end;
    }
    const Gridledger__Block *b = r->block;
    const Gridledger__BlockHeader *hd = b->header;
    size_t len = gridledger__block_header__get_packed_size(hd);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    gridledger__block_header__pack(hd, buf);
    if (gl_tx_id(buf, len, h) != 0) {
        set_err(err, errlen, "SHA-256 failed");
        goto end;
    }
    if (r->hash.len != HASH_LEN || memcmp(r->hash.data, h, HASH_LEN) != 0) {
        set_err(err, errlen, "block hash is not SHA-256 of the header");
        goto end;
    }
    if (hd->tx_count != b->n_transactions) {
        set_err(err, errlen, "header tx_count %lu, block holds %zu transactions",
                (unsigned long)hd->tx_count, b->n_transactions);
        goto end;
    }
    if (b->n_outcomes != b->n_transactions) {
        set_err(err, errlen, "%zu outcomes for %zu transactions", b->n_outcomes, b->n_transactions);
        goto end;
    }
    ids = malloc(b->n_transactions > 0 ? b->n_transactions * HASH_LEN : 1);
    if (ids == NULL) {
        set_err(err, errlen, "out of memory");
        goto end;
    }
    for (size_t i = 0; i < b->n_transactions; i++) {
        const ProtobufCBinaryData *p = &b->transactions[i]->payload;
        if (gl_tx_id(p->data, p->len, ids + i * HASH_LEN) != 0) {
            set_err(err, errlen, "SHA-256 failed");
            goto end;
        }
    }
    if (merkle_root(ids, b->n_transactions, h) != 0) {
        set_err(err, errlen, "SHA-256 failed");
        goto end;
    }
    if (hd->tx_root.len != HASH_LEN || memcmp(hd->tx_root.data, h, HASH_LEN) != 0) {
        set_err(err, errlen, "tx_root is not the Merkle root of the transaction ids");
        goto end;
    }
    rc = 0;
end:
    free(ids);
    free(buf);
    return rc;
}
