/*
 * gridledger.h - a small blocking C client for the GridLedger wire protocol v1
 * (Docs/wire-protocol.md): mutual TLS 1.3, framed protobuf-c messages, gRPC call model.
 *
 * Messages are the protoc-c structs of Sources/CGridProto (the codec the node uses too).
 *
 * Thread safety: NONE per connection. A gl_client and its streams must be used by one
 * thread at a time (different connections may be used from different threads). The
 * library keeps no global mutable state beyond what OpenSSL itself keeps.
 *
 * Calls: one call (stream) is open on a connection at a time. gl_unary and the typed
 * wrappers open and finish their own stream; a gl_stream must be finished or freed
 * (gl_stream_free) before the next call starts, and all streams must be freed before
 * gl_close.
 *
 * Signals: writing to a socket the peer has closed raises SIGPIPE. The library does not
 * change signal dispositions; a program that must survive a dropped connection ignores
 * SIGPIPE (gridctl does).
 *
 * Errors: every call reports a gl_status. Codes are gRPC's (0 OK .. 16 UNAUTHENTICATED).
 * Local failures use the same codes: connection/TLS failures and GOAWAY are UNAVAILABLE,
 * an expired deadline is DEADLINE_EXCEEDED, a response above max_message_bytes is
 * RESOURCE_EXHAUSTED, a protocol violation by the server is INTERNAL. A status that came
 * from the server's TRAILERS also carries its trailer metadata (gl_status_metadata_get).
 *
 * Transactions: gl_signer signs TxPayloads (ECDSA P-256 over SHA-256, with OpenSSL) for
 * the Ingest methods; gl_tx_id is the transaction id, SHA-256 of the payload bytes.
 *
 * Anchoring (proof.c, contracts.c): gl_verify_proof checks a BlockProof offline; the
 * FeeControl, Control and Notices wrappers and the parameter builders serve the prepaid
 * fee-control contracts (Docs/anchoring.md, Proto/gridledger/contracts.proto).
 */
#ifndef GRIDLEDGER_H
#define GRIDLEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "gridledger/anchor.pb-c.h"
#include "gridledger/chain.pb-c.h"
#include "gridledger/contracts.pb-c.h"
#include "gridledger/health.pb-c.h"
#include "gridledger/ingest.pb-c.h"
#include "gridledger/ops.pb-c.h"
#include "gridledger/raft.pb-c.h"
#include "gridledger/wire.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes. */
typedef enum gl_code {
    GL_OK = 0,
    GL_CANCELLED = 1,
    GL_UNKNOWN = 2,
    GL_INVALID_ARGUMENT = 3,
    GL_DEADLINE_EXCEEDED = 4,
    GL_NOT_FOUND = 5,
    GL_ALREADY_EXISTS = 6,
    GL_PERMISSION_DENIED = 7,
    GL_RESOURCE_EXHAUSTED = 8,
    GL_FAILED_PRECONDITION = 9,
    GL_ABORTED = 10,
    GL_OUT_OF_RANGE = 11,
    GL_UNIMPLEMENTED = 12,
    GL_INTERNAL = 13,
    GL_UNAVAILABLE = 14,
    GL_DATA_LOSS = 15,
    GL_UNAUTHENTICATED = 16,
} gl_code;

#define GL_STATUS_MESSAGE_MAX 1024
/* Room for trailer metadata: a TRAILERS frame is at most 16 KiB. */
#define GL_STATUS_METADATA_MAX 16384

/*
 * Final status of a call. `message` is NUL-terminated, truncated to fit. The md_* fields
 * hold the trailer metadata (CallStatus.metadata) in a private layout: read them with the
 * gl_status_metadata_* functions. Local failures have no metadata. A gl_status is a plain
 * value (about 17 KiB): copy it with `=`, nothing to free.
 */
typedef struct gl_status {
    int code;
    char message[GL_STATUS_MESSAGE_MAX];
    size_t md_count;
    size_t md_len;
    int md_truncated; /* 1 when entries were dropped for lack of room (never in practice) */
    unsigned char md[GL_STATUS_METADATA_MAX];
} gl_status;

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" for numbers outside 0..16. */
const char *gl_status_code_name(int code);

/* Number of trailer metadata entries in `st`. */
size_t gl_status_metadata_count(const gl_status *st);

/*
 * Entry i (0 .. count-1) in the order the server sent them: *key (NUL-terminated) and
 * *value / *value_len point into `st` and stay valid while `st` is unchanged. Returns 0,
 * or -1 when i is out of range.
 */
int gl_status_metadata_at(const gl_status *st, size_t i, const char **key,
                          const uint8_t **value, size_t *value_len);

/*
 * Looks up the first entry whose key equals `key` (keys are lower-case on the wire; the
 * comparison is exact). Returns 1 with *value / *value_len (either may be NULL) pointing
 * into `st`, or 0 when absent.
 */
int gl_status_metadata_get(const gl_status *st, const char *key, const uint8_t **value,
                           size_t *value_len);

/* Trailer key of ALREADY_EXISTS: the serialized gridledger.TxLocation of the original. */
#define GL_MD_TX_LOCATION "gridledger-tx-location-bin"

typedef struct gl_options {
    const char *host;        /* DNS name or IP literal to dial (required) */
    uint16_t port;           /* required */
    const char *cert_path;   /* client certificate (PEM, may hold a chain; required) */
    const char *key_path;    /* its private key (PEM; required) */
    const char *ca_path;     /* deployment CA (PEM): the ONLY trust root (required) */
    const char *server_name; /* name/IP the server certificate must carry; NULL = host */
    uint32_t connect_timeout_ms;  /* TCP connect + TLS handshake; 0 = 10000 */
    uint32_t max_message_bytes;   /* largest response MESSAGE accepted; 0 = 4 MiB */
    /* Chain the chain-service calls (Query, Ingest) of this connection are for: every
     * request carries it as `chain_id`. NULL or "" = the node's only chain (a node serving
     * several answers INVALID_ARGUMENT). Copied; change it with gl_client_set_chain_id. */
    const char *chain_id;
} gl_options;

typedef struct gl_client gl_client;
typedef struct gl_stream gl_stream;

/*
 * Connects: TCP, then TLS 1.3 with the client certificate, trusting only opts->ca_path,
 * offering ALPN "gridledger/1" and requiring the server to select it, checking that the
 * server certificate names server_name (subjectAltName DNS or IP) and that its subject OU
 * is "node". Returns NULL on failure with a reason in `err` (may be NULL).
 * The result is freed by gl_close.
 */
gl_client *gl_connect(const gl_options *opts, char *err, size_t errlen);

/* Sends TLS close_notify (best effort), closes the socket, frees everything. NULL is fine. */
void gl_close(gl_client *c);

/*
 * 1 while the connection can start calls; 0 after a GOAWAY or a connection error (open a
 * new connection then).
 */
int gl_client_usable(const gl_client *c);

#define GL_CHAIN_ID_MAX 256 /* longest chain id accepted, bytes */

/*
 * Sets the chain the following chain-service calls of `c` are for (NULL or "" = the
 * node's only chain). Returns 0, or -1 when it is longer than GL_CHAIN_ID_MAX bytes
 * (unchanged then).
 */
int gl_client_set_chain_id(gl_client *c, const char *chain_id);

/* The chain id requests of `c` carry ("" = the node's only chain). */
const char *gl_client_chain_id(const gl_client *c);

/*
 * One unary call. `method` is "/<package>.<Service>/<Method>". `req` is any protoc-c
 * message; the response is decoded with `resp_desc` into *resp_out, which the caller
 * frees with protobuf_c_message_free_unpacked(*resp_out, NULL). *resp_out is NULL unless
 * the call succeeded. timeout_ms 0 = no deadline; otherwise it is sent as
 * CallHeaders.timeout_ms and enforced locally (CANCEL is sent when it expires).
 * Returns the status code (GL_OK on success); status_out (may be NULL) gets code+message.
 */
int gl_unary(gl_client *c, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
             uint64_t timeout_ms, gl_status *status_out);

/* ---- Streams: server-, client- and bidirectional streaming -------------------------------
 *
 * Server streaming:   s = gl_stream_open(...); gl_stream_send(s, req);
 *                     gl_stream_close_send(s); while (gl_stream_next(s, &m, &st) == 1) {...}
 *                     gl_stream_free(s);
 * Client streaming:   open; send ... send; close_send; gl_stream_next once for the
 *                     response, again for the end; free.
 *
 * Bidirectional:      open; then send and next in any order; close_send when done
 *                     sending; next until it returns 0.
 *
 * Frames are buffered and written together: by gl_stream_next (before it waits), by
 * close_send, and by send once 64 KiB are pending. close_send sets END_STREAM on the last
 * frame when it is still buffered (a unary call is HEADERS, MESSAGE|END_STREAM), and
 * otherwise sends an END frame (type 7), so a bidirectional caller may read before it
 * half-closes.
 */

/*
 * Opens a call. The deadline clock (timeout_ms, 0 = none) starts now. Returns NULL when
 * the call cannot start (connection unusable, another stream still open, bad method), with
 * the reason in status_out (may be NULL).
 */
gl_stream *gl_stream_open(gl_client *c, const char *method,
                          const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
                          gl_status *status_out);

/* Queues one request message. Returns 0, or -1 with status_out filled (the call is then
 * finished with that status). */
int gl_stream_send(gl_stream *s, const ProtobufCMessage *msg, gl_status *status_out);

/* Half-closes: END_STREAM on the last buffered frame, or an END frame; writes what is
 * buffered. A second call is a no-op. Returns 0 or -1 with status_out filled. */
int gl_stream_close_send(gl_stream *s, gl_status *status_out);

/*
 * Waits for the next response. Returns 1 with a message in *msg_out (free it with
 * protobuf_c_message_free_unpacked(*msg_out, NULL)), or 0 at the end of the call with the
 * final status in status_out (OK, the server's TRAILERS, or a local failure). After the
 * end, further calls return 0 and the same status.
 */
int gl_stream_next(gl_stream *s, ProtobufCMessage **msg_out, gl_status *status_out);

/* Cancels a live call (sends CANCEL; the final status becomes CANCELLED). No-op once
 * the call has ended. Does not free. */
void gl_stream_cancel(gl_stream *s);

/* Cancels if still live, then frees. NULL is fine. */
void gl_stream_free(gl_stream *s);

/* Stream id on the wire (odd, increasing per connection); for logs. */
uint32_t gl_stream_id(const gl_stream *s);

/* ---- Typed wrappers ------------------------------------------------------------------ */

/* /gridledger.Ops/GetStatus. On GL_OK *out is set; free with
 * gridledger__get_status_response__free_unpacked(*out, NULL). */
int gl_get_status(gl_client *c, uint64_t timeout_ms, Gridledger__GetStatusResponse **out,
                  gl_status *status_out);

/* /gridledger.Health/Check. `service` NULL or "" = the node itself. */
int gl_health_check(gl_client *c, const char *service, uint64_t timeout_ms,
                    Gridledger__ServingStatus *out, gl_status *status_out);

/* /gridledger.Health/Watch: opens the server stream (request sent, send side closed).
 * Returns NULL on failure. Read updates with gl_health_watch_next; free with
 * gl_stream_free. */
gl_stream *gl_health_watch(gl_client *c, const char *service, uint64_t timeout_ms,
                           gl_status *status_out);

/* 1 with *out set to the next status, or 0 at the end with status_out filled. */
int gl_health_watch_next(gl_stream *s, Gridledger__ServingStatus *out, gl_status *status_out);

/* "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" (the enum name without its
 * SERVING_STATUS_ prefix); "UNKNOWN" for values outside the enum. */
const char *gl_serving_status_name(Gridledger__ServingStatus s);

/* ---- Transactions: signing and ids (signer.c) ------------------------------------------ */

#define GL_TX_ID_LEN 32
#define GL_PARTY_FIELD_MAX 65 /* party names and districts: 1..64 of [A-Za-z0-9._-] */

/* A party as named by its certificate subject (CN / OU / L); "" when absent. */
typedef struct gl_party {
    char name[GL_PARTY_FIELD_MAX];
    char role[GL_PARTY_FIELD_MAX];
    char district[GL_PARTY_FIELD_MAX];
} gl_party;

/*
 * Reads CN, OU and L of a DER certificate. Fails (-1, reason in err) when the DER does not
 * parse, or a field occurs more than once or is longer than 64 bytes. Does not verify the
 * certificate. Returns 0.
 */
int gl_party_from_der(const uint8_t *der, size_t len, gl_party *out, char *err, size_t errlen);

typedef struct gl_signer gl_signer;

/*
 * Loads a signer: the first certificate of cert_path (PEM) and its private key (PEM,
 * unencrypted; an encrypted key fails rather than prompting). The key must be ECDSA P-256
 * and match the certificate. Returns NULL with a reason in err on failure; free with
 * gl_signer_free.
 * Thread safety: use a signer from one thread at a time (OpenSSL documents no guarantee
 * for one EVP_PKEY in simultaneous signing calls); load one per thread to sign in
 * parallel. gl_tx_id, gl_verify_transaction and gl_party_from_der keep no state.
 */
gl_signer *gl_signer_load(const char *cert_path, const char *key_path, char *err, size_t errlen);
void gl_signer_free(gl_signer *s);

/* The signer's certificate subject: name (CN), role (OU), district (L, "" if none). */
const gl_party *gl_signer_party(const gl_signer *s);

/* Its certificate, DER (owned by the signer). */
const uint8_t *gl_signer_certificate_der(const gl_signer *s, size_t *len);

/*
 * Signs a payload (Docs/wire-protocol.md, "Submitting"): out->payload = the packed
 * payload, out->signature = ECDSA P-256 signature (DER) over SHA-256(payload)
 * (EVP_DigestSign with EVP_sha256), out->signer_certificate = the certificate DER.
 * `out` is initialised here; its three buffers are malloc'd: release them with
 * gl_signed_transaction_clear (never protobuf_c_message_free_unpacked). If tx_id is not
 * NULL it receives the transaction id. Returns 0, or -1 with err (out left empty).
 */
int gl_sign_transaction(const gl_signer *s, const Gridledger__TxPayload *payload,
                        Gridledger__SignedTransaction *out, uint8_t tx_id[GL_TX_ID_LEN],
                        char *err, size_t errlen);

/* Frees the buffers gl_sign_transaction filled and re-initialises *tx. NULL is fine. */
void gl_signed_transaction_clear(Gridledger__SignedTransaction *tx);

/* Transaction id: SHA-256 of the payload bytes exactly as signed. Returns 0 or -1. */
int gl_tx_id(const uint8_t *payload, size_t len, uint8_t out[GL_TX_ID_LEN]);

/*
 * Checks that tx->signature verifies over SHA-256(tx->payload) with the public key of
 * tx->signer_certificate (ECDSA P-256). Does NOT check that the certificate chains to a
 * CA or is in its validity period (the node does). Returns 0 when it verifies, -1 with a
 * reason otherwise.
 */
int gl_verify_transaction(const Gridledger__SignedTransaction *tx, char *err, size_t errlen);

/* ---- Chain services (chain.c) ------------------------------------------------------------
 * Each unary wrapper returns the status code; on GL_OK *out is set (free it with the
 * message's *__free_unpacked(*out, NULL)), otherwise *out is NULL.
 *
 * Every request carries the connection's chain id (gl_options.chain_id,
 * gl_client_set_chain_id): "" = the node's only chain; a node serving several chains
 * answers INVALID_ARGUMENT to "", NOT_FOUND to a chain it does not serve.
 */

/* /gridledger.Query/GetChainInfo. */
int gl_get_chain_info(gl_client *c, uint64_t timeout_ms, Gridledger__ChainInfo **out,
                      gl_status *status_out);

/*
 * /gridledger.Ingest/SubmitReadings (collector, node) with a signed transaction. Answered
 * once the block holding it is durable. ALREADY_EXISTS: the transaction id is already on
 * the chain; gl_status_tx_location(status_out, ...) gives the original location.
 * RESOURCE_EXHAUSTED: the node's queue is full (retry the same transaction later) or the
 * batch is above its limit.
 */
int gl_submit_readings(gl_client *c, const Gridledger__SignedTransaction *tx,
                       uint64_t timeout_ms, Gridledger__SubmitResponse **out,
                       gl_status *status_out);

/* /gridledger.Ingest/Submit (any submitting role); same contract as gl_submit_readings. */
int gl_submit(gl_client *c, const Gridledger__SignedTransaction *tx, uint64_t timeout_ms,
              Gridledger__SubmitResponse **out, gl_status *status_out);

/* Decodes the GL_MD_TX_LOCATION trailer of `st`: 1 with *out set (free with
 * gridledger__tx_location__free_unpacked), 0 when absent, -1 when it does not decode. */
int gl_status_tx_location(const gl_status *st, Gridledger__TxLocation **out);

/* /gridledger.Query/GetBlock: by hash when hash != NULL (hash_len bytes), else by height. */
int gl_get_block(gl_client *c, uint64_t height, const uint8_t *hash, size_t hash_len,
                 uint64_t timeout_ms, Gridledger__GetBlockResponse **out,
                 gl_status *status_out);

/* /gridledger.Query/GetTransaction. */
int gl_get_transaction(gl_client *c, const uint8_t *tx_id, size_t tx_id_len,
                       uint64_t timeout_ms, Gridledger__GetTransactionResponse **out,
                       gl_status *status_out);

/*
 * Reads of single items take a consistency (Docs/wire-protocol.md, "Chain services"):
 * GRIDLEDGER__CONSISTENCY__CONSISTENCY_LOCAL answers from what the node has applied;
 * GRIDLEDGER__CONSISTENCY__CONSISTENCY_LINEARIZABLE first gets a leader-confirmed read index
 * (Raft ReadIndex) and waits until the node has applied it, so the answer reflects every
 * block committed before the query, on followers too (UNAVAILABLE without a leader).
 * gl_get_block and gl_get_transaction are the _ex functions with CONSISTENCY_LOCAL.
 */
int gl_get_block_ex(gl_client *c, uint64_t height, const uint8_t *hash, size_t hash_len,
                    Gridledger__Consistency consistency, uint64_t timeout_ms,
                    Gridledger__GetBlockResponse **out, gl_status *status_out);

int gl_get_transaction_ex(gl_client *c, const uint8_t *tx_id, size_t tx_id_len,
                          Gridledger__Consistency consistency, uint64_t timeout_ms,
                          Gridledger__GetTransactionResponse **out, gl_status *status_out);

/* /gridledger.Query/GetState: found, value, version of a state key (e.g.
 * "reading/<meter>/<timestamp_ms, 15 digits zero-padded>"). */
int gl_get_state(gl_client *c, const char *key, Gridledger__Consistency consistency,
                 uint64_t timeout_ms, Gridledger__GetStateResponse **out, gl_status *status_out);

/* /gridledger.Query/GetHistory: at most `limit` versions of a key, newest first (0 = the
 * node's default, 100; at most 1000). */
int gl_get_history(gl_client *c, const char *key, uint32_t limit,
                   Gridledger__Consistency consistency, uint64_t timeout_ms,
                   Gridledger__GetHistoryResponse **out, gl_status *status_out);

/*
 * /gridledger.Query/SubscribeBlocks from `from_height`: opens the server stream (request
 * sent, send side closed); NULL on failure. The node sends every block from from_height,
 * then each new durable block; a subscriber more than 256 blocks behind the head is cut
 * off with RESOURCE_EXHAUSTED (subscribe again from the next height). Free with
 * gl_stream_free.
 */
gl_stream *gl_subscribe_blocks(gl_client *c, uint64_t from_height, uint64_t timeout_ms,
                               gl_status *status_out);

/* 1 with the next block in *out (free with gridledger__get_block_response__free_unpacked),
 * or 0 at the end with status_out filled. */
int gl_subscribe_blocks_next(gl_stream *s, Gridledger__GetBlockResponse **out,
                             gl_status *status_out);

/*
 * Checks a block against its hashes as the node computes them (header hash =
 * SHA-256(serialized BlockHeader); tx_root = Merkle root of the tx ids with leaf
 * H(0x00 || id), node H(0x01 || left || right), an odd node promoted, empty = H("")):
 * r->hash is the header hash, tx_root matches the transactions, tx_count and the outcome
 * count match. Returns 0, or -1 with the first mismatch in err.
 */
int gl_block_verify(const Gridledger__GetBlockResponse *r, char *err, size_t errlen);

/* ---- Administration (chain.c): a chain's Raft group, role admin ----------------------------
 * Each is a unary MemberRequest{chain_id, node_id, address, name} -> MemberResponse{
 * conf_state{voters, learners}, leader}; on GL_OK *out is set (free it with
 * gridledger__member_response__free_unpacked(*out, NULL)). Other roles get
 * PERMISSION_DENIED; a chain the node does not serve NOT_FOUND.
 */

/* /gridledger.Admin/TransferLeader: hands leadership of chain_id to member node_id. */
int gl_admin_transfer_leader(gl_client *c, const char *chain_id, uint64_t node_id,
                             uint64_t timeout_ms, Gridledger__MemberResponse **out,
                             gl_status *status_out);

/* /gridledger.Admin/AddMember: adds node_id as a learner; `name` is the certificate CN of
 * its node certificate, `address` its host:port. */
int gl_admin_add_member(gl_client *c, const char *chain_id, uint64_t node_id, const char *name,
                        const char *address, uint64_t timeout_ms,
                        Gridledger__MemberResponse **out, gl_status *status_out);

/* The same with the member's key pinned: `pin` is "sha256:" and the 64 hex digits of the
 * SHA-256 of its certificate's public key (`gridnode ca issue` prints it); NULL = no pin. */
int gl_admin_add_member_pinned(gl_client *c, const char *chain_id, uint64_t node_id,
                               const char *name, const char *address, const char *pin,
                               uint64_t timeout_ms, Gridledger__MemberResponse **out,
                               gl_status *status_out);

/* /gridledger.Admin/PromoteMember: makes learner node_id a voter. */
int gl_admin_promote_member(gl_client *c, const char *chain_id, uint64_t node_id,
                            uint64_t timeout_ms, Gridledger__MemberResponse **out,
                            gl_status *status_out);

/* /gridledger.Admin/RemoveMember: removes node_id from the group. */
int gl_admin_remove_member(gl_client *c, const char *chain_id, uint64_t node_id,
                           uint64_t timeout_ms, Gridledger__MemberResponse **out,
                           gl_status *status_out);

/*
 * Fills *req (initialised here) for the Admin calls; the strings are borrowed (NULL = "").
 * The gl_admin_* functions use it; exposed for tests and for gl_unary callers.
 */
void gl_member_request_init(Gridledger__MemberRequest *req, const char *chain_id,
                            uint64_t node_id, const char *name, const char *address);

/*
 * Request builders of the chain-service wrappers: each initialises *req and fills it; the
 * strings and buffers are borrowed (a NULL string = ""). `chain_id` is the request's
 * chain_id field. Exposed for tests and for gl_unary / gl_stream callers.
 */
void gl_get_chain_info_request_init(Gridledger__GetChainInfoRequest *req, const char *chain_id);
void gl_submit_request_init(Gridledger__SubmitRequest *req, const char *chain_id,
                            const Gridledger__SignedTransaction *tx);
/* By hash when hash != NULL, else by height. */
void gl_get_block_request_init(Gridledger__GetBlockRequest *req, const char *chain_id,
                               uint64_t height, const uint8_t *hash, size_t hash_len,
                               Gridledger__Consistency consistency);
void gl_get_transaction_request_init(Gridledger__GetTransactionRequest *req,
                                     const char *chain_id, const uint8_t *tx_id,
                                     size_t tx_id_len, Gridledger__Consistency consistency);
void gl_get_state_request_init(Gridledger__GetStateRequest *req, const char *chain_id,
                               const char *key, Gridledger__Consistency consistency);
void gl_get_history_request_init(Gridledger__GetHistoryRequest *req, const char *chain_id,
                                 const char *key, uint32_t limit,
                                 Gridledger__Consistency consistency);
void gl_subscribe_blocks_request_init(Gridledger__SubscribeBlocksRequest *req,
                                      const char *chain_id, uint64_t from_height);

/* ---- Anchoring proofs (proof.c) -------------------------------------------------------------
 * Docs/anchoring.md, "Proofs": a BlockProof carries a district block header, its Merkle path
 * to an anchor's headers_root, the anchor transaction, the anchor's path to a main block's
 * tx_root, that main header, and the anchor's TxOutcome with its path to the header's
 * outcomes_root. Verification needs no connection.
 */

#define GL_HASH_MAX 64 /* room for any hash suite's output ("sha256", "sm3": 32 bytes) */

/* What a verified proof establishes. */
typedef struct gl_proof_result {
    char district[GL_CHAIN_ID_MAX + 1];
    uint64_t height;
    uint8_t header_hash[GL_HASH_MAX]; /* district suite */
    size_t header_hash_len;
    uint64_t anchor_from, anchor_to;  /* the anchored range, both included */
    char main_chain[GL_CHAIN_ID_MAX + 1];
    uint64_t main_height;
    uint32_t main_index;              /* the anchor's position in the main block */
    uint8_t main_block_hash[GL_HASH_MAX]; /* main suite */
    size_t main_block_hash_len;
    size_t signatures_verified;       /* anchor signatures checked against the CA; 0 without */
} gl_proof_result;

/*
 * Verifies a serialized gridledger.BlockProof (the algorithm of the node's ProofVerifier,
 * grammar at the top of proof.c): header hash (the suite the header names: "sha256"/""
 * or "sm3"), the shape of each Merkle path (that of its leaf index: height in the range,
 * main_index in tx_count) and its fold, the anchor's district and range, the main chain
 * id, and the anchor's outcome (code 0, folding to outcomes_root). With
 * ca_path (PEM) also every anchor signature: ECDSA P-256 over SHA-256(anchor digest) by a
 * distinct certificate chaining to that CA, valid now, with OU "node" and L = the
 * district; at least one. ca_path NULL skips the signatures (signatures_verified 0).
 * Returns 0 with *out filled, or -1 with the failed check in err (*out zeroed).
 */
int gl_verify_proof(const uint8_t *proof, size_t len, const char *ca_path, gl_proof_result *out,
                    char *err, size_t errlen);

/*
 * The root that `leaf` and its path give under the tx-root rule of hash suite `suite`:
 * node = H(0x00 || leaf); per step: promoted -> unchanged, sibling_left ->
 * H(0x01 || sibling || node), else H(0x01 || node || sibling). out holds GL_HASH_MAX
 * bytes; *out_len gets the length. 0, or -1 for an unknown suite or a digest failure.
 */
int gl_merkle_fold(const char *suite, const uint8_t *leaf, size_t leaf_len,
                   Gridledger__MerkleStep *const *steps, size_t n_steps, uint8_t *out,
                   size_t *out_len);

/* The anchor digest district members sign (Docs/anchoring.md, "Anchor"; proof.c). 0 or -1. */
int gl_anchor_digest(const Gridledger__Anchor *anchor, uint8_t out[32]);

/* ---- Anchoring and fee-control calls (contracts.c) ---------------------------------------------
 * Requests carry the connection's chain id (gl_options.chain_id, gl_client_set_chain_id),
 * like the chain services; unary wrappers follow the chain-service contract above.
 */

/* /gridledger.Query/ProveBlock: the proof that block `height` of the connection's (district)
 * chain is anchored. Free with gridledger__block_proof__free_unpacked. */
int gl_prove_block(gl_client *c, uint64_t height, uint64_t timeout_ms,
                   Gridledger__BlockProof **out, gl_status *status_out);

/* /gridledger.FeeControl/GetAccount (any role): the account and its customer archive.
 * Free with gridledger__get_account_response__free_unpacked. */
int gl_get_account(gl_client *c, const char *account, uint64_t timeout_ms,
                   Gridledger__GetAccountResponse **out, gl_status *status_out);

/* /gridledger.FeeControl/ListAccounts: accounts in `state`, or with any_warning those in
 * WARNING1 or WARNING2; limit 0 = the node's default. */
int gl_list_accounts(gl_client *c, Gridledger__AccountState state, int any_warning,
                     uint32_t limit, uint64_t timeout_ms, Gridledger__ListAccountsResponse **out,
                     gl_status *status_out);

/* /gridledger.FeeControl/ListCommands: control commands in `status`
 * (..._COMMAND_STATUS_UNSPECIFIED = every status). */
int gl_list_commands(gl_client *c, Gridledger__CommandStatus status, uint32_t limit,
                     uint64_t timeout_ms, Gridledger__ListCommandsResponse **out,
                     gl_status *status_out);

/*
 * /gridledger.FeeControl/GetDistrictResults on the main chain (the connection's chain id is
 * the main chain's): what `district`'s anchors carried up, decoded: totals (UplinkSummary
 * over every anchor), each account's newest AccountResult in account order after
 * `after_account` ("" = from the first; at most `limit`, 0 = the node's default), the
 * page's warning and disconnected accounts, and next_after ("" = no more pages; else call
 * again with after_account = next_after). Free with
 * gridledger__get_district_results_response__free_unpacked.
 */
int gl_district_results(gl_client *c, const char *district, const char *after_account,
                        uint32_t limit, uint64_t timeout_ms,
                        Gridledger__GetDistrictResultsResponse **out, gl_status *status_out);

/* /gridledger.Control/SubscribeCommands (role device, own district): the pending commands,
 * then each one issued. Read with gl_subscribe_commands_next; free with gl_stream_free. */
gl_stream *gl_subscribe_commands(gl_client *c, uint64_t timeout_ms, gl_status *status_out);

/* 1 with the next command (free with gridledger__control_command__free_unpacked), or 0 at
 * the end with status_out filled. */
int gl_subscribe_commands_next(gl_stream *s, Gridledger__ControlCommand **out,
                               gl_status *status_out);

/* /gridledger.Notices/Subscribe (role marketing): notices from district height from_height. */
gl_stream *gl_subscribe_notices(gl_client *c, uint64_t from_height, uint64_t timeout_ms,
                                gl_status *status_out);

/* 1 with the next notice (free with gridledger__notice__free_unpacked), or 0 at the end. */
int gl_subscribe_notices_next(gl_stream *s, Gridledger__Notice **out, gl_status *status_out);

/*
 * Fills *p (initialised here) for a submission other than readings: chain_id, created_ms =
 * now, nonce = 32 random hex digits written into nonce_buf. Set the body (body_case and the
 * union member) afterwards, sign with gl_sign_transaction and submit with gl_submit.
 * Strings are borrowed. Returns 0, or -1 when no random bytes are available.
 */
#define GL_NONCE_BUF 33
int gl_tx_payload_init(Gridledger__TxPayload *p, const char *chain_id,
                       char nonce_buf[GL_NONCE_BUF]);

/* Request builders of the wrappers above (strings borrowed; NULL = ""). */
void gl_prove_block_request_init(Gridledger__ProveBlockRequest *req, const char *chain_id,
                                 uint64_t height);
void gl_get_account_request_init(Gridledger__GetAccountRequest *req, const char *chain_id,
                                 const char *account);
void gl_list_accounts_request_init(Gridledger__ListAccountsRequest *req, const char *chain_id,
                                   Gridledger__AccountState state, int any_warning,
                                   uint32_t limit);
void gl_list_commands_request_init(Gridledger__ListCommandsRequest *req, const char *chain_id,
                                   Gridledger__CommandStatus status, uint32_t limit);
void gl_district_results_request_init(Gridledger__GetDistrictResultsRequest *req,
                                      const char *chain_id, const char *district,
                                      const char *after_account, uint32_t limit);

/* "NORMAL", "WARNING1", ..., the enum names without their prefix; "UNKNOWN" outside. */
const char *gl_account_state_name(Gridledger__AccountState s);
const char *gl_command_kind_name(Gridledger__CommandKind k);
const char *gl_command_status_name(Gridledger__CommandStatus s);
const char *gl_notice_kind_name(Gridledger__NoticeKind k);

#ifdef __cplusplus
}
#endif

#endif /* GRIDLEDGER_H */
