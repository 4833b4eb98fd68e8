/*
 * gridctl's internal header (not part of the library): what main and its helpers
 * (gridctl.c), the JSON writer (gridctl_json.c), the signed submissions
 * (gridctl_submit.c) and the command families (cmd_*.c) share. The program's overview,
 * output and exit statuses are at the top of gridctl.c.
 */
#ifndef GRIDCTL_H
#define GRIDCTL_H

#include "gridledger.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_RPC 2
#define EXIT_USAGE 64
#define EXIT_DATAERR 65
#define EXIT_NOINPUT 66
#define EXIT_IO 74
#define DEFAULT_UNARY_TIMEOUT_MS 10000u
#define DEFAULT_SUBMIT_TIMEOUT_MS 60000u

/* ---- options and the state of a run (gridctl.c) ------------------------------------------ */

enum { OPT_ADDR, OPT_CERT, OPT_KEY, OPT_CA, OPT_TIMEOUT, OPT_SERVER_NAME, OPT_MAX_MESSAGE,
       OPT_CSV, OPT_BATCH, OPT_HASH, OPT_FROM, OPT_COUNT, OPT_LINEARIZABLE, OPT_CHAIN, OPT_NODE,
       OPT_NAME, OPT_ADDRESS, OPT_OUT, OPT_VERIFY, OPT_DISTRICT, OPT_ACCOUNT, OPT_METER,
       OPT_PHASE, OPT_TARIFF, OPT_PROTECTED, OPT_CONTACT, OPT_THRESHOLDS, OPT_OPENING,
       OPT_CYCLE_START, OPT_FILE, OPT_ID, OPT_ALARM1, OPT_ALARM2, OPT_OVERDRAFT, OPT_RECONNECT,
       OPT_DIRECT_CLOSE, OPT_VALID_MS, OPT_GRID_WORKER, OPT_AMOUNT, OPT_SERIAL, OPT_FAILED,
       OPT_DETAIL, OPT_STATUS, OPT_ACK, OPT_LIMIT, OPT_VERSION, OPT_AT_HEIGHT, OPT_SUM_TOLERANCE,
       OPT_SPIKE_FACTOR, OPT_FUTURE_TOLERANCE, OPT_MAX_INTERPOLATION, OPT_SPIKE_MIN_HISTORY,
       OPT_LANGUAGE, OPT_TEMPLATE, OPT_REVERSES, OPT_AFTER, OPT_ALL, OPT_JSON, OPT_PIN, OPT_N };
#define MAX_TEMPLATES 16 /* --template may repeat */

/* One option: its name (without "--"), the commands that take it, whether it is a flag. */
struct option_spec {
    const char *name;
    const char *command; /* NULL: global; else the commands that take it, "a|b" */
    int flag;            /* 1: takes no value (set to "1") */
};

extern const struct option_spec option_table[OPT_N];

#define MAX_POSITIONAL 64 /* register-district DISTRICT CERT.pem... */

/* Everything a command needs. */
typedef struct app {
    const char *opt[OPT_N];
    const char *templates[MAX_TEMPLATES]; /* every --template, in order */
    int ntemplates;
    const char *pos[MAX_POSITIONAL];
    int npos;
    char host[256];
    gl_options opts;
    uint64_t timeout; /* per call; 0 = none */
    int have_timeout;
    gl_client *client;
    gl_status st; /* status of the last call (large: lives here, not on the stack) */
} app;

/* Prints "gridctl: <message>" and the usage text on stderr; returns EXIT_USAGE. */
int usage(const char *fmt, ...);
/* 1 when `cmd` is one of the '|'-separated names in `list`. */
int command_in(const char *list, const char *cmd);
/* A decimal number of at most `max`: 0, or -1. */
int parse_u64(const char *s, unsigned long long max, unsigned long long *out);
/* Splits HOST:PORT or [V6]:PORT into `host` (copied into buf) and port: 0, or -1. */
int parse_addr(const char *addr, char *buf, size_t buflen, uint16_t *port);
/* Reports a failed call ("error: CODE_NAME: message"); returns EXIT_RPC. */
int rpc_error(const gl_status *st);
/* Connects a->client with a->opts: 0, or EXIT_RPC after reporting. */
int connect_app(app *a);
/* The chain id payloads name: --chain, else the connected node's only chain (GetChainInfo,
 * kept in *ci for the caller to free). 0, or EXIT_RPC after reporting. */
int chain_for_payloads(app *a, Gridledger__ChainInfo **ci, const char **chain_id);
/* `n` bytes as lowercase hex into `out` (2 * n + 1 bytes). */
void hex_string(const uint8_t *b, size_t n, char *out);
/* Wall-clock time in Unix milliseconds. */
int64_t wall_ms(void);

/* ---- JSON output (gridctl_json.c) ------------------------------------------------------- */

/*
 * A small JSON writer. Compact mode: {"a": 1, "b": [1, 2]} on one line. Pretty mode: one
 * member per line, two spaces per level, empty containers as {} and [].
 */
#define JW_MAX_DEPTH 16

typedef struct jw {
    FILE *f;
    int pretty;
    int depth;
    int after_key;
    int first[JW_MAX_DEPTH + 1];
} jw;

void jw_init(jw *w, FILE *f, int pretty);
void jw_open(jw *w, char ch);
void jw_close(jw *w, char ch);
void jw_key(jw *w, const char *k);
void jw_str(jw *w, const char *s);
void jw_u64(jw *w, unsigned long long v);
void jw_i64(jw *w, long long v);
void jw_null(jw *w);
void jw_u64_array(jw *w, const uint64_t *v, size_t n);
void jw_double(jw *w, double v);
void jw_hex(jw *w, const uint8_t *b, size_t len);
void jw_kstr(jw *w, const char *k, const char *v);
void jw_ku64(jw *w, const char *k, unsigned long long v);
void jw_ki64(jw *w, const char *k, long long v);
void jw_kbool(jw *w, const char *k, int v);
void jw_kbytes(jw *w, const char *k, ProtobufCBinaryData b);
/* Any decoded message as JSON (proto field names, enums by name, bytes as hex). */
void jw_message(jw *w, const ProtobufCMessage *m);
/* Flushes stdout; 0, or EXIT_IO after saying why. */
int flush_stdout(void);

/* ---- signed submissions (gridctl_submit.c) ---------------------------------------------- */

/* The result of one submission, for its JSON line. */
typedef struct submitted {
    char tx_hex[2 * GL_TX_ID_LEN + 1];
    int have_location, already;
    unsigned long long height;
    unsigned index;
    unsigned code; /* outcome code: 0 applied */
    char message[512];
} submitted;

int sign_submit(app *a, gl_client *c, const gl_signer *sg, const char *chain_id,
                Gridledger__TxPayload *payload, submitted *res);
void print_submitted_fields(jw *w, const submitted *r);
int submit_command(app *a, Gridledger__TxPayload *payload);

/* ---- the commands (main runs them from its table) --------------------------------------- */

/* cmd_chain.c: the node (status, health, watch-health) and the chain (chain, block, tx,
 * state, watch, prove, verify-proof) */
int cmd_status(app *a);
int cmd_health(app *a);
int cmd_watch_health(app *a);
int cmd_chain(app *a);
int cmd_block(app *a);
int cmd_tx(app *a);
int cmd_state(app *a);
int cmd_watch(app *a);
int cmd_verify_proof(app *a);
int cmd_prove(app *a);

/* cmd_ingest.c: ingest */
int cmd_ingest(app *a);

/* cmd_admin.c: admin (Raft membership), register-district */
int cmd_admin(app *a);
int cmd_register_district(app *a);

/* cmd_feecontrol.c: district parameters and fee control (param, pay, ack, account,
 * warnings and disconnected (cmd_accounts), commands, watch-commands, watch-notices,
 * district-results) */
int cmd_param(app *a);
int cmd_pay(app *a);
int cmd_ack(app *a);
int cmd_account(app *a);
int cmd_accounts(app *a);
int cmd_commands(app *a);
int cmd_watch_commands(app *a);
int cmd_watch_notices(app *a);
int cmd_district_results(app *a);

#endif
