/*
 * gridctl's signed submissions (Ingest/Submit): signing a payload as the --cert/--key party,
 * submitting it and printing the result. Used by register-district, param, pay, ack and
 * watch-commands --ack.
 */
#include "gridctl.h"

#include <stdio.h>
#include <string.h>

/*
 * Signs `payload` (its body set; chain_id, created_ms and nonce filled here) as `sg` and
 * submits it on client `c` with Ingest/Submit. ALREADY_EXISTS is a result (already = 1,
 * the original location), not an error. Returns 0, or an exit status after reporting.
 */
int sign_submit(app *a, gl_client *c, const gl_signer *sg, const char *chain_id,
                       Gridledger__TxPayload *payload, submitted *res)
{
    Gridledger__SignedTransaction tx;
    Gridledger__SubmitResponse *resp = NULL;
    Gridledger__TxLocation *loc = NULL;
    char nonce[GL_NONCE_BUF], err[GL_STATUS_MESSAGE_MAX];
    uint8_t id[GL_TX_ID_LEN];
    int rc = 0;

    memset(res, 0, sizeof *res);
    gridledger__signed_transaction__init(&tx);
    Gridledger__TxPayload filled;
    if (gl_tx_payload_init(&filled, chain_id, nonce) != 0) {
        fprintf(stderr, "error: no random bytes for the nonce (RAND_bytes failed)\n");
        return 1;
    }
    payload->chain_id = filled.chain_id;
    payload->created_ms = filled.created_ms;
    payload->nonce = filled.nonce;
    if (gl_sign_transaction(sg, payload, &tx, id, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s: cannot sign: %s\n", gl_status_code_name(GL_INTERNAL), err);
        return EXIT_RPC;
    }
    hex_string(id, GL_TX_ID_LEN, res->tx_hex);
    uint64_t timeout = a->have_timeout ? a->timeout : DEFAULT_SUBMIT_TIMEOUT_MS;
    int code = gl_submit(c, &tx, timeout, &resp, &a->st);
    if (code == GL_ALREADY_EXISTS && gl_status_tx_location(&a->st, &loc) == 1) {
        res->already = res->have_location = 1;
        res->height = loc->height;
        res->index = loc->index;
    } else if (code != GL_OK) {
        rc = rpc_error(&a->st);
    } else {
        if (resp->location != NULL) {
            res->have_location = 1;
            res->height = resp->location->height;
            res->index = resp->location->index;
        }
        res->already = resp->already_existed;
        if (resp->outcome != NULL && resp->outcome->code != 0) {
            res->code = resp->outcome->code;
            snprintf(res->message, sizeof res->message, "%s", resp->outcome->message);
        }
    }
    if (loc != NULL)
        gridledger__tx_location__free_unpacked(loc, NULL);
    if (resp != NULL)
        gridledger__submit_response__free_unpacked(resp, NULL);
    gl_signed_transaction_clear(&tx);
    return rc;
}

void print_submitted_fields(jw *w, const submitted *r)
{
    jw_kstr(w, "tx_id", r->tx_hex);
    if (r->have_location) {
        jw_ku64(w, "height", r->height);
        jw_ku64(w, "index", r->index);
    }
    if (r->already)
        jw_kbool(w, "already_existed", 1);
    if (r->code != 0) {
        jw_ku64(w, "code", r->code);
        jw_kstr(w, "message", r->message);
    }
}

/*
 * The common part of the submitting commands: loads the signer (--cert/--key), connects,
 * learns the chain id (--chain, else GetChainInfo), signs and submits `payload`, prints
 * {"tx_id", "height", "index"[, "already_existed"][, "code", "message"]}. A transaction
 * rejected when applied exits 2.
 */
int submit_command(app *a, Gridledger__TxPayload *payload)
{
    char err[GL_STATUS_MESSAGE_MAX];
    Gridledger__ChainInfo *ci = NULL;
    submitted res;
    jw w;
    int rc;
    gl_signer *sg = gl_signer_load(a->opts.cert_path, a->opts.key_path, err, sizeof err);
    if (sg == NULL) {
        fprintf(stderr, "error: %s: cannot sign: %s\n", gl_status_code_name(GL_INVALID_ARGUMENT), err);
        return EXIT_RPC;
    }
    if ((rc = connect_app(a)) != 0)
        goto end;
    const char *chain_id;
    if ((rc = chain_for_payloads(a, &ci, &chain_id)) != 0)
        goto end;
    if ((rc = sign_submit(a, a->client, sg, chain_id, payload, &res)) != 0)
        goto end;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    print_submitted_fields(&w, &res);
    jw_close(&w, '}');
    if ((rc = flush_stdout()) == 0 && res.code != 0) {
        fprintf(stderr, "error: committed but rejected when applied: %s: %s\n",
                gl_status_code_name((int)res.code), res.message);
        rc = EXIT_RPC;
    }
end:
    if (ci != NULL)
        gridledger__chain_info__free_unpacked(ci, NULL);
    gl_signer_free(sg);
    return rc;
}
