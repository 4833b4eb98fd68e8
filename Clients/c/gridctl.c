/*
 * gridctl - command-line client of a GridLedger node (gridledger.h).
 *
 *   gridctl --addr HOST:PORT --cert C --key K --ca CA [--timeout MS] [--server-name N]
 *           [--max-message-bytes N] COMMAND [ARGS]
 *
 * Output is JSON on stdout: one document (status, health, chain, block, tx, state, admin,
 * verify-proof, account) or one line per item (watch-health, watch, ingest, submissions,
 * warnings, disconnected, commands, watch-commands, watch-notices); prove writes the proof
 * bytes; district-results a report for people (or JSON lines with --json). Exit status: 0 OK;
 * 1 the proof does not verify (verify-proof, prove --verify); 2 RPC or connection error,
 * reported on stderr as "error: <CODE_NAME>: <message>" (a call) or "error: cannot connect to
 * HOST:PORT: <why>" (no connection; gl_connect's sentence); 64 usage
 * error; 65 bad input data ("file:line: reason" on stderr, nothing submitted); 66 input file
 * cannot be opened; 74 I/O error.
 *
 * This file: usage, option parsing, the command table and main, with the helpers every
 * command uses (gridctl.h). The commands are in one file per family: cmd_chain.c (node and
 * chain queries, proofs), cmd_ingest.c, cmd_admin.c (Raft membership, register-district),
 * cmd_feecontrol.c (district parameters and fee control); gridctl_json.c writes JSON,
 * gridctl_submit.c signs and submits transactions.
 */
#include "gridctl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: gridctl --addr HOST:PORT --cert FILE --key FILE --ca FILE [--timeout MS]\n"
    "               [--server-name NAME] [--max-message-bytes N] COMMAND [ARGS]\n"
    "commands:\n"
    "  status                  Ops/GetStatus, printed as JSON (needs an ops or admin cert)\n"
    "  health [SERVICE]        Health/Check: {\"status\": \"SERVING\"}\n"
    "  watch-health [SERVICE]  Health/Watch: one JSON line per update\n"
    "  chain [--chain ID]      Query/GetChainInfo\n"
    "  ingest --csv FILE [--batch N] [--chain ID]\n"
    "                          sign the readings of FILE (\"-\" = stdin) in batches of N\n"
    "                          (default 500, at most 10000) as the --cert/--key party, for\n"
    "                          its district (certificate L); Ingest/SubmitReadings; one JSON\n"
    "                          line per batch. The whole file is validated first. Re-running\n"
    "                          is safe: readings already on the chain count as duplicates.\n"
    "                          The payloads name --chain ID, else the chain GetChainInfo names.\n"
    "  block HEIGHT | block --hash HEX [--linearizable] [--chain ID]\n"
    "                          Query/GetBlock: header, hash, transactions, outcomes\n"
    "  tx TX_ID [--linearizable] [--chain ID]\n"
    "                          Query/GetTransaction: payload, signer, location, outcome\n"
    "  state KEY [--linearizable] [--chain ID]\n"
    "                          Query/GetState: {\"key\", \"found\", \"value\" (hex), \"version\"};\n"
    "                          values of known keys also \"decoded_as\" and \"decoded\"\n"
    "                          (uplink/<d>/totals, uplink/<d>/account/<a>, account/<a>, ...)\n"
    "  watch [--from HEIGHT] [--count N] [--chain ID]\n"
    "                          Query/SubscribeBlocks: one JSON line per block (header + hash)\n"
    "                          until interrupted, or N blocks\n"
    "  admin transfer-leader --chain ID --node N\n"
    "  admin add-member --chain ID --node N --name CN --address HOST:PORT [--pin sha256:HEX]\n"
    "  admin promote --chain ID --node N\n"
    "  admin remove --chain ID --node N\n"
    "                          Admin/TransferLeader, AddMember, PromoteMember, RemoveMember\n"
    "                          (admin cert): {\"leader\": N, \"voters\": [...], \"learners\": [...]}\n"
    "anchoring (Docs/anchoring.md):\n"
    "  verify-proof FILE [--ca CA]  verify a serialized BlockProof (\"-\" = stdin) offline; no\n"
    "                          --addr/--cert/--key needed; --ca also checks the anchor\n"
    "                          signatures; JSON result, or exit 1 with the reason\n"
    "  prove HEIGHT [-o|--out FILE] [--verify] [--chain D]\n"
    "                          Query/ProveBlock: the proof bytes to FILE (default stdout);\n"
    "                          --verify checks them at once against --ca and prints the JSON\n"
    "                          (then the bytes go only to --out)\n"
    "  register-district DISTRICT CERT.pem... [--chain MAIN]   (admin)\n"
    "  param customer --district D --account A --meter M [--phase A|B|C|ABC] --tariff T\n"
    "        [--protected] [--contact PHONE] [--thresholds ID] [--opening-balance FEN]\n"
    "        [--cycle-start MM-DD] [--chain MAIN]                 (marketing)\n"
    "  param tariff --district D --file FILE [--chain MAIN]      (tariff_file.h format)\n"
    "                          to change a tariff, send the new one with the same tariff_id:\n"
    "                          it replaces the old one from the block that takes it on\n"
    "  param thresholds --district D [--id ID] --alarm1 FEN --alarm2 FEN --overdraft FEN\n"
    "        --reconnect FEN [--direct-close] [--valid-ms MS] [--grid-worker PHONE]\n"
    "  param notice-templates --district D --language zh-CN|en [--file FILE]\n"
    "        [--template KIND:RECIPIENT:TEXT]...   SMS texts (params.h): KIND warning1,\n"
    "        warning2, disconnect, formal_disconnect, reconnect; RECIPIENT customer,\n"
    "        grid_worker; placeholders {account} {meter} {balance} {state}\n"
    "  param activation --district D --version N --at-height H [--sum-tolerance E]\n"
    "        [--spike-factor F] [--future-tolerance-ms MS] [--max-interpolation-ms MS]\n"
    "        [--spike-min-history N]    (admin) fee-control version N and its VEE\n"
    "        parameters from district height H on; omitted or 0 = the default\n"
    "  pay --district D --account A --amount FEN --serial S [--reverses SERIAL] [--chain MAIN]\n"
    "                          --reverses: a reversal (冲正) of payment SERIAL; --amount is\n"
    "                          that payment's amount (positive), sent negative\n"
    "  ack COMMAND_ID [--failed] [--detail TEXT] [--chain D]   (device)\n"
    "                          sign with --cert/--key, Ingest/Submit; one line {\"tx_id\",\n"
    "                          \"height\", \"index\"} (+ \"already_existed\"; \"code\", \"message\"\n"
    "                          and exit 2 when rejected when applied). The payload names\n"
    "                          --chain, else the chain GetChainInfo names.\n"
    "fee control (district chains):\n"
    "  account ACCOUNT [--chain D]   FeeControl/GetAccount: balance, state, usage, charges\n"
    "  warnings | disconnected [--chain D] [--limit N]   FeeControl/ListAccounts, JSON lines\n"
    "  commands --district D [--status issued|acknowledged|failed|expired] [--limit N]\n"
    "  watch-commands [--chain D] [--ack] [--count N]   Control/SubscribeCommands (device);\n"
    "                          --ack acknowledges each command as a success\n"
    "  watch-notices [--chain D] [--from H] [--count N]  Notices/Subscribe (marketing)\n"
    "main-chain results:\n"
    "  district-results --district D [--chain MAIN] [--limit N] [--after ACCOUNT] [--all]\n"
    "        [--json]         FeeControl/GetDistrictResults: totals, warning and disconnect\n"
    "                          lists, each account's balance, state, charges and payments\n"
    "                          (yuan); --all follows every page; --json one line per page\n"
    "options:\n"
    "  --timeout MS       deadline of each call (default 10000; 60000 for ingest's\n"
    "                     submissions; none for watch and watch-health)\n"
    "  --server-name NAME name the node certificate must carry (default: HOST)\n"
    "  --max-message-bytes N  largest response accepted (default 4194304)\n"
    "  --chain ID         chain, ingest, block, tx, state, watch: the chain the requests\n"
    "                     are for (a node serving several chains needs it); default: the\n"
    "                     node's only chain\n"
    "  --linearizable     block, tx, state: a linearizable read (Raft ReadIndex), fresh on\n"
    "                     followers too; default: what the node has applied\n"
    "exit status: 0 ok, 1 proof does not verify, 2 RPC/connection error (\"error: cannot\n"
    "connect to HOST:PORT: why\" when the node cannot be reached or the TLS handshake fails),\n"
    "64 usage, 65 bad input data, 66 cannot open input, 74 I/O error\n";

int usage(const char *fmt, ...)
{
    va_list ap;
    fputs("gridctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* ---- argument parsing ----------------------------------------------------------------- */

int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *endp = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &endp, 10);
    if (errno != 0 || endp == s || *endp != 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits HOST:PORT or [V6]:PORT into `host` (copied into buf) and port. */
int parse_addr(const char *addr, char *buf, size_t buflen, uint16_t *port)
{
    const char *host, *colon;
    size_t hostlen;
    unsigned long long p;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = addr + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || strchr(addr, ':') != colon)
            return -1;
        host = addr;
        hostlen = (size_t)(colon - addr);
    }
    if (hostlen == 0 || hostlen >= buflen || parse_u64(colon + 1, 65535, &p) != 0 || p == 0)
        return -1;
    memcpy(buf, host, hostlen);
    buf[hostlen] = 0;
    *port = (uint16_t)p;
    return 0;
}

const struct option_spec option_table[OPT_N] = {
    [OPT_ADDR] = {"addr", NULL, 0},         [OPT_CERT] = {"cert", NULL, 0},
    [OPT_KEY] = {"key", NULL, 0},           [OPT_CA] = {"ca", NULL, 0},
    [OPT_TIMEOUT] = {"timeout", NULL, 0},   [OPT_SERVER_NAME] = {"server-name", NULL, 0},
    [OPT_MAX_MESSAGE] = {"max-message-bytes", NULL, 0},
    [OPT_CSV] = {"csv", "ingest", 0},       [OPT_BATCH] = {"batch", "ingest", 0},
    [OPT_HASH] = {"hash", "block", 0},      [OPT_FROM] = {"from", "watch|watch-notices", 0},
    [OPT_COUNT] = {"count", "watch|watch-commands|watch-notices", 0},
    [OPT_LINEARIZABLE] = {"linearizable", "block|tx|state", 1},
    [OPT_CHAIN] = {"chain", "admin|chain|ingest|block|tx|state|watch|prove|register-district|param|"
                            "pay|ack|account|warnings|disconnected|watch-commands|watch-notices|"
                            "district-results", 0},
    [OPT_NODE] = {"node", "admin", 0},
    [OPT_NAME] = {"name", "admin", 0},      [OPT_ADDRESS] = {"address", "admin", 0},
    [OPT_PIN] = {"pin", "admin", 0},
    [OPT_OUT] = {"out", "prove", 0},        [OPT_VERIFY] = {"verify", "prove", 1},
    [OPT_DISTRICT] = {"district", "param|pay|commands|district-results", 0},
    [OPT_ACCOUNT] = {"account", "param|pay", 0},
    [OPT_METER] = {"meter", "param", 0},    [OPT_PHASE] = {"phase", "param", 0},
    [OPT_TARIFF] = {"tariff", "param", 0},  [OPT_PROTECTED] = {"protected", "param", 1},
    [OPT_CONTACT] = {"contact", "param", 0},
    [OPT_THRESHOLDS] = {"thresholds", "param", 0},
    [OPT_OPENING] = {"opening-balance", "param", 0},
    [OPT_CYCLE_START] = {"cycle-start", "param", 0},
    [OPT_FILE] = {"file", "param", 0},      [OPT_ID] = {"id", "param", 0},
    [OPT_ALARM1] = {"alarm1", "param", 0},  [OPT_ALARM2] = {"alarm2", "param", 0},
    [OPT_OVERDRAFT] = {"overdraft", "param", 0},
    [OPT_RECONNECT] = {"reconnect", "param", 0},
    [OPT_DIRECT_CLOSE] = {"direct-close", "param", 1},
    [OPT_VALID_MS] = {"valid-ms", "param", 0},
    [OPT_GRID_WORKER] = {"grid-worker", "param", 0},
    [OPT_AMOUNT] = {"amount", "pay", 0},    [OPT_SERIAL] = {"serial", "pay", 0},
    [OPT_FAILED] = {"failed", "ack", 1},    [OPT_DETAIL] = {"detail", "ack", 0},
    [OPT_STATUS] = {"status", "commands", 0},
    [OPT_ACK] = {"ack", "watch-commands", 1},
    [OPT_LIMIT] = {"limit", "warnings|disconnected|commands|district-results", 0},
    [OPT_VERSION] = {"version", "param", 0},
    [OPT_AT_HEIGHT] = {"at-height", "param", 0},
    [OPT_SUM_TOLERANCE] = {"sum-tolerance", "param", 0},
    [OPT_SPIKE_FACTOR] = {"spike-factor", "param", 0},
    [OPT_FUTURE_TOLERANCE] = {"future-tolerance-ms", "param", 0},
    [OPT_MAX_INTERPOLATION] = {"max-interpolation-ms", "param", 0},
    [OPT_SPIKE_MIN_HISTORY] = {"spike-min-history", "param", 0},
    [OPT_LANGUAGE] = {"language", "param", 0},
    [OPT_TEMPLATE] = {"template", "param", 0},
    [OPT_REVERSES] = {"reverses", "pay", 0},
    [OPT_AFTER] = {"after", "district-results", 0},
    [OPT_ALL] = {"all", "district-results", 1},
    [OPT_JSON] = {"json", "district-results", 1},
};

/* 1 when `cmd` is one of the '|'-separated names in `list`. */
int command_in(const char *list, const char *cmd)
{
    size_t n = strlen(cmd);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, cmd, n) == 0)
            return 1;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return 0;
}

int rpc_error(const gl_status *st)
{
    fprintf(stderr, "error: %s: %s\n", gl_status_code_name(st->code), st->message);
    return EXIT_RPC;
}

int connect_app(app *a)
{
    char err[GL_STATUS_MESSAGE_MAX];
    a->client = gl_connect(&a->opts, err, sizeof err);
    if (a->client == NULL) {
        fprintf(stderr, "error: %s\n", err); /* a sentence: "cannot connect to H:P: why" */
        return EXIT_RPC;
    }
    return 0;
}

int chain_for_payloads(app *a, Gridledger__ChainInfo **ci, const char **chain_id)
{
    *chain_id = a->opt[OPT_CHAIN];
    if (*chain_id != NULL)
        return 0;
    if (gl_get_chain_info(a->client, a->have_timeout ? a->timeout : DEFAULT_UNARY_TIMEOUT_MS, ci,
                          &a->st) != GL_OK)
        return rpc_error(&a->st);
    *chain_id = (*ci)->chain_id;
    return 0;
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hex_string(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* ---- main ----------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(app *);
    int max_pos;        /* positional arguments after the command */
    int connect_first;  /* main connects before run */
    int streaming;      /* no default deadline */
    int offline;        /* needs no node: --addr, --cert, --key not required */
} commands[] = {
    {"status", cmd_status, 0, 1, 0, 0},
    {"health", cmd_health, 1, 1, 0, 0},
    {"watch-health", cmd_watch_health, 1, 1, 1, 0},
    {"chain", cmd_chain, 0, 1, 0, 0},
    {"ingest", cmd_ingest, 0, 0, 0, 0},
    {"block", cmd_block, 1, 0, 0, 0},
    {"tx", cmd_tx, 1, 0, 0, 0},
    {"state", cmd_state, 1, 0, 0, 0},
    {"admin", cmd_admin, 1, 0, 0, 0},
    {"watch", cmd_watch, 0, 0, 1, 0},
    {"verify-proof", cmd_verify_proof, 1, 0, 0, 1},
    {"prove", cmd_prove, 1, 0, 0, 0},
    {"register-district", cmd_register_district, MAX_POSITIONAL - 1, 0, 0, 0},
    {"param", cmd_param, 1, 0, 0, 0},
    {"pay", cmd_pay, 0, 0, 0, 0},
    {"ack", cmd_ack, 1, 0, 0, 0},
    {"account", cmd_account, 1, 0, 0, 0},
    {"warnings", cmd_accounts, 0, 0, 0, 0},
    {"disconnected", cmd_accounts, 0, 0, 0, 0},
    {"commands", cmd_commands, 0, 0, 0, 0},
    {"watch-commands", cmd_watch_commands, 0, 0, 1, 0},
    {"watch-notices", cmd_watch_notices, 0, 0, 1, 0},
    {"district-results", cmd_district_results, 0, 0, 0, 0},
};

int main(int argc, char **argv)
{
    static app a; /* static: gl_status is large */
    unsigned long long timeout = 0, max_message = 0;
    int rc = EXIT_USAGE;
    int ci = -1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            rc = 0;
            goto end;
        }
        if (strcmp(arg, "-o") == 0)
            arg = "--out"; /* the one short option: prove -o FILE */
        if (strncmp(arg, "--", 2) != 0 || arg[2] == 0) {
            if (a.npos == MAX_POSITIONAL) {
                rc = usage("unexpected argument %s", arg);
                goto end;
            }
            a.pos[a.npos++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int o;
        for (o = 0; o < OPT_N; o++)
            if (strlen(option_table[o].name) == nlen && strncmp(name, option_table[o].name, nlen) == 0)
                break;
        if (o == OPT_N) {
            rc = usage("unknown option %s", arg);
            goto end;
        }
        if (o == OPT_TEMPLATE && a.opt[o] != NULL) {
            if (a.ntemplates == MAX_TEMPLATES) {
                rc = usage("at most %d --template options", MAX_TEMPLATES);
                goto end;
            }
        }
        if (option_table[o].flag) {
            if (eq != NULL) {
                rc = usage("option --%s takes no value", option_table[o].name);
                goto end;
            }
            a.opt[o] = "1";
        } else if (eq != NULL) {
            a.opt[o] = eq + 1;
        } else {
            if (i + 1 >= argc) {
                rc = usage("option %s needs a value", arg);
                goto end;
            }
            a.opt[o] = argv[++i];
        }
        if (o == OPT_TEMPLATE)
            a.templates[a.ntemplates++] = a.opt[o];
    }
    if (a.npos == 0) {
        rc = usage("missing command");
        goto end;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(a.pos[0], commands[k].name) == 0)
            ci = (int)k;
    if (ci < 0) {
        rc = usage("unknown command %s", a.pos[0]);
        goto end;
    }
    if (a.npos - 1 > commands[ci].max_pos) {
        rc = usage("too many arguments for %s", a.pos[0]);
        goto end;
    }
    for (int o = 0; o < OPT_N; o++) {
        if (a.opt[o] != NULL && option_table[o].command != NULL &&
            !command_in(option_table[o].command, a.pos[0])) {
            rc = usage("--%s is an option of %s, not of %s", option_table[o].name,
                       option_table[o].command, a.pos[0]);
            goto end;
        }
    }
    if (commands[ci].offline) {
        rc = commands[ci].run(&a);
        goto end;
    }
    if (a.opt[OPT_ADDR] == NULL || a.opt[OPT_CERT] == NULL || a.opt[OPT_KEY] == NULL ||
        a.opt[OPT_CA] == NULL) {
        rc = usage("--addr, --cert, --key and --ca are required");
        goto end;
    }
    if (parse_addr(a.opt[OPT_ADDR], a.host, sizeof a.host, &a.opts.port) != 0) {
        rc = usage("--addr %s is not HOST:PORT", a.opt[OPT_ADDR]);
        goto end;
    }
    if (a.opt[OPT_TIMEOUT] != NULL) {
        if (parse_u64(a.opt[OPT_TIMEOUT], 86400000ull, &timeout) != 0) {
            rc = usage("--timeout %s is not a number of milliseconds (0..86400000)", a.opt[OPT_TIMEOUT]);
            goto end;
        }
        a.have_timeout = 1;
    } else if (!commands[ci].streaming) {
        timeout = DEFAULT_UNARY_TIMEOUT_MS;
    }
    a.timeout = timeout;
    if (a.opt[OPT_MAX_MESSAGE] != NULL &&
        (parse_u64(a.opt[OPT_MAX_MESSAGE], UINT32_MAX, &max_message) != 0 || max_message == 0)) {
        rc = usage("--max-message-bytes %s is not a positive number of bytes", a.opt[OPT_MAX_MESSAGE]);
        goto end;
    }

    /* A dropped connection must surface as an error, not kill us. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "error: cannot ignore SIGPIPE: %s\n", strerror(errno));
        rc = 1;
        goto end;
    }

    a.opts.host = a.host;
    a.opts.cert_path = a.opt[OPT_CERT];
    a.opts.key_path = a.opt[OPT_KEY];
    a.opts.ca_path = a.opt[OPT_CA];
    a.opts.server_name = a.opt[OPT_SERVER_NAME];
    a.opts.connect_timeout_ms =
        a.have_timeout && timeout > 0 && timeout < 10000 ? (uint32_t)timeout : 0;
    a.opts.max_message_bytes = (uint32_t)max_message;
    if (a.opt[OPT_CHAIN] != NULL && strcmp(a.pos[0], "admin") != 0) {
        if (a.opt[OPT_CHAIN][0] == 0 || strlen(a.opt[OPT_CHAIN]) > GL_CHAIN_ID_MAX) {
            rc = usage("--chain needs a chain id (1..%d bytes)", GL_CHAIN_ID_MAX);
            goto end;
        }
        a.opts.chain_id = a.opt[OPT_CHAIN]; /* every request of the connection carries it */
    }
    if (commands[ci].connect_first && (rc = connect_app(&a)) != 0)
        goto end;
    rc = commands[ci].run(&a);
end:
    gl_close(a.client);
    return rc;
}
