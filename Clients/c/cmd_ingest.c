/*
 * gridctl ingest: the readings of a CSV file signed in batches and submitted with
 * Ingest/SubmitReadings, retrying RESOURCE_EXHAUSTED with backoff; one JSON line per batch.
 */
#include "gridctl.h"
#include "readings_csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#define DEFAULT_BATCH 500u
#define MAX_BATCH 10000u /* the node's default limit of readings per batch */
#define SUBMIT_RETRIES 10
#define BACKOFF_FIRST_MS 100u
#define BACKOFF_MAX_MS 5000u
#define NONCE_BYTES 16

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Backoff before retry n (1-based): 100 ms doubling up to 5 s, plus up to 25% jitter. */
static unsigned backoff_ms(int n)
{
    unsigned ms = BACKOFF_FIRST_MS;
    for (int i = 1; i < n && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    unsigned char r = 0;
    if (RAND_bytes(&r, 1) == 1)
        ms += ms / 4u * r / 255u;
    return ms;
}

static const char *base_name(const char *path)
{
    if (strcmp(path, "-") == 0)
        return "stdin";
    const char *slash = strrchr(path, '/');
    return slash != NULL && slash[1] != 0 ? slash + 1 : path;
}

/* Reads and validates the CSV. 0, or an exit status after reporting. */
static int load_csv(const char *path, gl_csv_readings *rs)
{
    char err[600];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_NOINPUT;
    }
    int r = gl_csv_read_readings(f, strcmp(path, "-") == 0 ? "(stdin)" : path, rs, err, sizeof err);
    if (f != stdin)
        fclose(f);
    if (r == GL_CSV_EDATA) {
        fprintf(stderr, "%s\n", err);
        return EXIT_DATAERR;
    }
    if (r != GL_CSV_OK) {
        fprintf(stderr, "error: %s\n", err);
        return r == GL_CSV_EIO ? EXIT_IO : 1;
    }
    if (rs->count == 0) {
        fprintf(stderr, "%s: no readings after the header\n", path);
        return EXIT_DATAERR;
    }
    return 0;
}

/* Prints the line of a batch that is on the chain. */
static void print_ingest_line(unsigned long long batch, const char *tx_hex,
                              const Gridledger__TxLocation *loc, const Gridledger__TxOutcome *o,
                              int already)
{
    jw w;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    jw_ku64(&w, "batch", batch);
    jw_kstr(&w, "tx_id", tx_hex);
    if (already)
        jw_kbool(&w, "already_existed", 1);
    if (loc != NULL) {
        jw_ku64(&w, "height", loc->height);
        jw_ku64(&w, "index", loc->index);
    }
    if (o != NULL) {
        jw_ku64(&w, "accepted", o->readings_accepted);
        jw_ku64(&w, "duplicate", o->readings_duplicate);
        if (o->code != 0) {
            jw_kstr(&w, "rejected", gl_status_code_name((int)o->code));
            jw_kstr(&w, "message", o->message);
        }
    }
    jw_close(&w, '}');
}

/*
 * Submits one signed batch, retrying RESOURCE_EXHAUSTED with backoff; prints its line.
 * Returns 0, 1 when the batch was committed but rejected at apply time, or an exit status.
 */
static int submit_batch(app *a, unsigned long long batch, const Gridledger__SignedTransaction *tx,
                        const uint8_t id[GL_TX_ID_LEN], uint64_t timeout)
{
    char tx_hex[2 * GL_TX_ID_LEN + 1];
    Gridledger__SubmitResponse *resp = NULL;
    Gridledger__TxLocation *loc = NULL;
    int rc;

    hex_string(id, GL_TX_ID_LEN, tx_hex);
    for (int attempt = 0;; attempt++) {
        if (gl_submit_readings(a->client, tx, timeout, &resp, &a->st) != GL_RESOURCE_EXHAUSTED ||
            attempt == SUBMIT_RETRIES)
            break;
        unsigned ms = backoff_ms(attempt + 1);
        fprintf(stderr, "gridctl: batch %llu: RESOURCE_EXHAUSTED (%s); retry %d/%d in %u ms\n", batch,
                a->st.message, attempt + 1, SUBMIT_RETRIES, ms);
        sleep_ms(ms);
    }
    if (a->st.code == GL_ALREADY_EXISTS) {
        /* The same transaction id is on the chain: report where, not an error. */
        int found = gl_status_tx_location(&a->st, &loc);
        if (found <= 0)
            fprintf(stderr, "gridctl: batch %llu: ALREADY_EXISTS (%s) %s\n", batch, a->st.message,
                    found < 0 ? "with a " GL_MD_TX_LOCATION " trailer that does not decode"
                              : "without a " GL_MD_TX_LOCATION " trailer");
        print_ingest_line(batch, tx_hex, loc, NULL, 1);
        rc = 0;
        goto end;
    }
    if (a->st.code != GL_OK) {
        if (a->st.code == GL_RESOURCE_EXHAUSTED)
            fprintf(stderr, "gridctl: batch %llu: still RESOURCE_EXHAUSTED after %d retries\n", batch,
                    SUBMIT_RETRIES);
        rc = rpc_error(&a->st);
        goto end;
    }
    if (resp->location == NULL) {
        fprintf(stderr, "error: %s: node answered batch %llu without a location\n",
                gl_status_code_name(GL_INTERNAL), batch);
        rc = EXIT_RPC;
        goto end;
    }
    if (resp->location->tx_id.len > 0 &&
        (resp->location->tx_id.len != GL_TX_ID_LEN ||
         memcmp(resp->location->tx_id.data, id, GL_TX_ID_LEN) != 0)) {
        fprintf(stderr, "error: %s: node reports another transaction id for batch %llu (ours %s)\n",
                gl_status_code_name(GL_INTERNAL), batch, tx_hex);
        rc = EXIT_RPC;
        goto end;
    }
    print_ingest_line(batch, tx_hex, resp->location, resp->outcome, resp->already_existed);
    rc = resp->outcome != NULL && resp->outcome->code != 0 ? 1 : 0;
end:
    if (loc != NULL)
        gridledger__tx_location__free_unpacked(loc, NULL);
    if (resp != NULL)
        gridledger__submit_response__free_unpacked(resp, NULL);
    return rc;
}

int cmd_ingest(app *a)
{
    gl_csv_readings rs = {NULL, 0, 0};
    gl_signer *signer = NULL;
    Gridledger__ChainInfo *ci = NULL;
    Gridledger__Reading *readings = NULL;
    Gridledger__Reading **reading_ptrs = NULL;
    Gridledger__SignedTransaction tx;
    unsigned long long batch = DEFAULT_BATCH;
    unsigned long long rejected = 0;
    char err[GL_STATUS_MESSAGE_MAX];
    int rc = 0;

    gridledger__signed_transaction__init(&tx);
    if (a->npos > 1)
        return usage("ingest takes --csv FILE [--batch N] [--chain ID], no arguments");
    if (a->opt[OPT_CSV] == NULL)
        return usage("ingest needs --csv FILE");
    if (a->opt[OPT_BATCH] != NULL &&
        (parse_u64(a->opt[OPT_BATCH], MAX_BATCH, &batch) != 0 || batch == 0))
        return usage("--batch %s is not a number of readings (1..%u)", a->opt[OPT_BATCH], MAX_BATCH);
    uint64_t timeout = a->have_timeout ? a->timeout : DEFAULT_SUBMIT_TIMEOUT_MS;

    /* Validate everything before anything is submitted. */
    if ((rc = load_csv(a->opt[OPT_CSV], &rs)) != 0)
        goto end;
    signer = gl_signer_load(a->opts.cert_path, a->opts.key_path, err, sizeof err);
    if (signer == NULL) {
        fprintf(stderr, "error: %s: cannot sign: %s\n", gl_status_code_name(GL_INVALID_ARGUMENT), err);
        rc = EXIT_RPC;
        goto end;
    }
    readings = calloc((size_t)batch, sizeof *readings);
    reading_ptrs = calloc((size_t)batch, sizeof *reading_ptrs);
    if (readings == NULL || reading_ptrs == NULL) {
        fprintf(stderr, "error: out of memory\n");
        rc = 1;
        goto end;
    }
    if ((rc = connect_app(a)) != 0)
        goto end;
    /* With --chain the payloads name that chain; otherwise the node's only chain. */
    const char *chain_id;
    if ((rc = chain_for_payloads(a, &ci, &chain_id)) != 0)
        goto end;

    const char *base = base_name(a->opt[OPT_CSV]);
    for (unsigned long long b = 0, start = 0; start < rs.count; b++, start += batch) {
        size_t n = rs.count - start < batch ? rs.count - start : (size_t)batch;
        uint8_t nonce_bytes[NONCE_BYTES], id[GL_TX_ID_LEN];
        char nonce[2 * NONCE_BYTES + 1];
        char batch_id[512];
        Gridledger__ReadingBatch rb;
        Gridledger__TxPayload payload;

        for (size_t i = 0; i < n; i++) {
            gl_csv_reading_to_proto(&rs.items[start + i], &readings[i]);
            reading_ptrs[i] = &readings[i];
        }
        if (RAND_bytes(nonce_bytes, sizeof nonce_bytes) != 1) {
            fprintf(stderr, "error: no random bytes for the nonce (RAND_bytes failed)\n");
            rc = 1;
            goto end;
        }
        hex_string(nonce_bytes, sizeof nonce_bytes, nonce);
        if ((size_t)snprintf(batch_id, sizeof batch_id, "%s-%llu", base, b) >= sizeof batch_id) {
            fprintf(stderr, "error: file name %s is too long for a batch id\n", base);
            rc = EXIT_USAGE;
            goto end;
        }
        gridledger__reading_batch__init(&rb);
        rb.district = (char *)gl_signer_party(signer)->district;
        rb.batch_id = batch_id;
        rb.n_readings = n;
        rb.readings = reading_ptrs;
        gridledger__tx_payload__init(&payload);
        payload.chain_id = (char *)chain_id;
        payload.created_ms = wall_ms();
        payload.nonce = nonce;
        payload.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_READINGS;
        payload.readings = &rb;
        if (gl_sign_transaction(signer, &payload, &tx, id, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s: cannot sign batch %llu: %s\n",
                    gl_status_code_name(GL_INTERNAL), b, err);
            rc = EXIT_RPC;
            goto end;
        }
        int r = submit_batch(a, b, &tx, id, timeout);
        gl_signed_transaction_clear(&tx);
        if (r == 1) {
            rejected++;
        } else if (r != 0) {
            rc = r;
            goto end;
        }
        if ((rc = flush_stdout()) != 0)
            goto end;
    }
    if (rejected > 0) {
        fprintf(stderr, "error: %llu batch(es) committed but rejected when applied (see \"rejected\")\n",
                rejected);
        rc = EXIT_RPC;
    }
end:
    gl_signed_transaction_clear(&tx);
    if (ci != NULL)
        gridledger__chain_info__free_unpacked(ci, NULL);
    free(reading_ptrs);
    free(readings);
    gl_signer_free(signer);
    gl_csv_readings_free(&rs);
    return rc;
}
