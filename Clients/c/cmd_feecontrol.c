/*
 * gridctl's district parameters and fee control: param (customer, tariff, thresholds,
 * notice-templates, activation), pay, ack, account, warnings, disconnected, commands,
 * watch-commands, watch-notices and district-results (the main chain's report).
 */
#include "gridctl.h"
#include "params.h"
#include "tariff_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- param, pay, ack (signed submissions) ---------------------------------------- */

static int parse_i64(const char *s, long long *out)
{
    char *endp = NULL;
    if (s == NULL || (*s != '-' && (*s < '0' || *s > '9')))
        return -1;
    errno = 0;
    long long v = strtoll(s, &endp, 10);
    if (errno != 0 || endp == s || *endp != 0)
        return -1;
    *out = v;
    return 0;
}

/* A required amount option in fen (any sign unless positive). 0, or -1 after usage(). */
static int fen_option(app *a, int opt, int positive, int required, long long *out)
{
    *out = 0;
    if (a->opt[opt] == NULL) {
        if (required) {
            usage("--%s FEN is required", option_table[opt].name);
            return -1;
        }
        return 0;
    }
    if (parse_i64(a->opt[opt], out) != 0 || (positive && *out <= 0)) {
        usage("--%s %s is not %s amount in fen", option_table[opt].name, a->opt[opt],
              positive ? "a positive" : "an");
        return -1;
    }
    return 0;
}

/* 1 when the options set are only those allowed for this kind of param ('|' list). */
static int only_options(app *a, const char *kind, const char *allowed)
{
    static const int param_opts[] = {OPT_ACCOUNT, OPT_METER, OPT_PHASE, OPT_TARIFF, OPT_PROTECTED,
                                     OPT_CONTACT, OPT_THRESHOLDS, OPT_OPENING, OPT_CYCLE_START,
                                     OPT_FILE, OPT_ID, OPT_ALARM1, OPT_ALARM2, OPT_OVERDRAFT,
                                     OPT_RECONNECT, OPT_DIRECT_CLOSE, OPT_VALID_MS, OPT_GRID_WORKER,
                                     OPT_VERSION, OPT_AT_HEIGHT, OPT_SUM_TOLERANCE, OPT_SPIKE_FACTOR,
                                     OPT_FUTURE_TOLERANCE, OPT_MAX_INTERPOLATION,
                                     OPT_SPIKE_MIN_HISTORY, OPT_LANGUAGE, OPT_TEMPLATE};
    for (size_t i = 0; i < sizeof param_opts / sizeof param_opts[0]; i++) {
        int o = param_opts[i];
        if (a->opt[o] != NULL && !command_in(allowed, option_table[o].name)) {
            usage("--%s is not an option of param %s", option_table[o].name, kind);
            return 0;
        }
    }
    return 1;
}

/* Submits a DistrictParameter for --district (the body already set in *p). */
static int submit_parameter(app *a, Gridledger__DistrictParameter *p)
{
    Gridledger__TxPayload payload;
    p->district = (char *)a->opt[OPT_DISTRICT];
    gridledger__tx_payload__init(&payload);
    payload.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_PARAMETER;
    payload.parameter = p;
    return submit_command(a, &payload);
}

static int param_customer(app *a)
{
    Gridledger__CustomerArchive c;
    Gridledger__DistrictParameter p;
    long long opening = 0;
    gridledger__customer_archive__init(&c);
    gridledger__district_parameter__init(&p);
    if (!only_options(a, "customer", "account|meter|phase|tariff|protected|contact|thresholds|"
                                     "opening-balance|cycle-start"))
        return EXIT_USAGE;
    if (a->opt[OPT_ACCOUNT] == NULL || a->opt[OPT_METER] == NULL || a->opt[OPT_TARIFF] == NULL)
        return usage("param customer needs --district, --account, --meter and --tariff");
    const char *phase = a->opt[OPT_PHASE] != NULL ? a->opt[OPT_PHASE] : "A";
    if (!command_in("A|B|C|ABC", phase))
        return usage("--phase is A, B, C or ABC");
    if (fen_option(a, OPT_OPENING, 0, 0, &opening) != 0)
        return EXIT_USAGE;
    if (a->opt[OPT_CYCLE_START] != NULL) {
        unsigned month = 0, day = 0;
        char extra;
        if (sscanf(a->opt[OPT_CYCLE_START], "%2u-%2u%c", &month, &day, &extra) != 2 || month < 1 ||
            month > 12 || day < 1 || day > 31)
            return usage("--cycle-start %s is not MM-DD", a->opt[OPT_CYCLE_START]);
        c.cycle_start_month = month;
        c.cycle_start_day = day;
    }
    c.account = (char *)a->opt[OPT_ACCOUNT];
    c.meter_id = (char *)a->opt[OPT_METER];
    c.phase = (char *)phase;
    c.tariff_id = (char *)a->opt[OPT_TARIFF];
    c.protected_supply = a->opt[OPT_PROTECTED] != NULL;
    c.contact = (char *)(a->opt[OPT_CONTACT] != NULL ? a->opt[OPT_CONTACT] : "");
    c.thresholds_id = (char *)(a->opt[OPT_THRESHOLDS] != NULL ? a->opt[OPT_THRESHOLDS] : "");
    c.opening_balance_fen = opening;
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_CUSTOMER;
    p.customer = &c;
    return submit_parameter(a, &p);
}

static int param_tariff(app *a)
{
    static gl_tariff t; /* large */
    Gridledger__DistrictParameter p;
    char err[600];
    if (!only_options(a, "tariff", "file"))
        return EXIT_USAGE;
    if (a->opt[OPT_FILE] == NULL)
        return usage("param tariff needs --district and --file FILE (format in tariff_file.h)");
    FILE *f = strcmp(a->opt[OPT_FILE], "-") == 0 ? stdin : fopen(a->opt[OPT_FILE], "r");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", a->opt[OPT_FILE], strerror(errno));
        return EXIT_NOINPUT;
    }
    int r = gl_tariff_read(f, a->opt[OPT_FILE], &t, err, sizeof err);
    if (f != stdin)
        fclose(f);
    if (r != GL_TARIFF_OK) {
        fprintf(stderr, "%s\n", err);
        return r == GL_TARIFF_EIO ? EXIT_IO : EXIT_DATAERR;
    }
    gridledger__district_parameter__init(&p);
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_TARIFF;
    p.tariff = &t.msg;
    return submit_parameter(a, &p);
}

static int param_thresholds(app *a)
{
    Gridledger__FeeControlThresholds th;
    Gridledger__DistrictParameter p;
    long long alarm1, alarm2, overdraft, reconnect;
    unsigned long long valid = 0;
    gridledger__fee_control_thresholds__init(&th);
    gridledger__district_parameter__init(&p);
    if (!only_options(a, "thresholds", "id|alarm1|alarm2|overdraft|reconnect|direct-close|"
                                       "valid-ms|grid-worker"))
        return EXIT_USAGE;
    if (fen_option(a, OPT_ALARM1, 0, 1, &alarm1) != 0 || fen_option(a, OPT_ALARM2, 0, 1, &alarm2) != 0 ||
        fen_option(a, OPT_OVERDRAFT, 0, 1, &overdraft) != 0 ||
        fen_option(a, OPT_RECONNECT, 0, 1, &reconnect) != 0)
        return EXIT_USAGE;
    if (a->opt[OPT_VALID_MS] != NULL && parse_u64(a->opt[OPT_VALID_MS], INT64_MAX, &valid) != 0)
        return usage("--valid-ms %s is not a number of milliseconds", a->opt[OPT_VALID_MS]);
    th.thresholds_id = (char *)(a->opt[OPT_ID] != NULL ? a->opt[OPT_ID] : "");
    th.alarm1_fen = alarm1;
    th.alarm2_fen = alarm2;
    th.overdraft_limit_fen = overdraft;
    th.reconnect_allowed_fen = reconnect;
    th.direct_close = a->opt[OPT_DIRECT_CLOSE] != NULL;
    th.command_valid_ms = (int64_t)valid;
    th.grid_worker_contact = (char *)(a->opt[OPT_GRID_WORKER] != NULL ? a->opt[OPT_GRID_WORKER] : "");
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_THRESHOLDS;
    p.thresholds = &th;
    return submit_parameter(a, &p);
}

/*
 * param activation --district D --version N --at-height H [--sum-tolerance E]
 *   [--spike-factor F] [--future-tolerance-ms MS] [--max-interpolation-ms MS]
 *   [--spike-min-history N] (admin): ContractActivation of fee-control; 0 or omitted = default.
 */
static int param_activation(app *a)
{
    static const int vee_opts[GL_VEE_N] = {
        [GL_VEE_SUM_TOLERANCE] = OPT_SUM_TOLERANCE, [GL_VEE_SPIKE_FACTOR] = OPT_SPIKE_FACTOR,
        [GL_VEE_FUTURE_TOLERANCE_MS] = OPT_FUTURE_TOLERANCE,
        [GL_VEE_MAX_INTERPOLATION_MS] = OPT_MAX_INTERPOLATION,
        [GL_VEE_SPIKE_MIN_HISTORY] = OPT_SPIKE_MIN_HISTORY};
    Gridledger__ContractActivation act;
    Gridledger__VeeParameters vee;
    Gridledger__DistrictParameter p;
    unsigned long long version = 0, height = 0;
    char err[400];

    if (!only_options(a, "activation", "version|at-height|sum-tolerance|spike-factor|"
                                       "future-tolerance-ms|max-interpolation-ms|spike-min-history"))
        return EXIT_USAGE;
    if (a->opt[OPT_VERSION] == NULL || a->opt[OPT_AT_HEIGHT] == NULL)
        return usage("param activation needs --district D, --version N and --at-height H");
    if (parse_u64(a->opt[OPT_VERSION], UINT32_MAX, &version) != 0 || version == 0)
        return usage("--version %s is not a contract version (1, 2, ...)", a->opt[OPT_VERSION]);
    if (parse_u64(a->opt[OPT_AT_HEIGHT], UINT64_MAX, &height) != 0 || height == 0)
        return usage("--at-height %s is not a district block height (1 or more)",
                     a->opt[OPT_AT_HEIGHT]);
    gridledger__vee_parameters__init(&vee);
    for (int k = 0; k < GL_VEE_N; k++) {
        uint64_t v = 0;
        if (a->opt[vee_opts[k]] == NULL)
            continue;
        if (gl_vee_parse(k, a->opt[vee_opts[k]], &v, err, sizeof err) != 0)
            return usage("%s", err);
        gl_vee_set(&vee, k, v);
    }
    gridledger__contract_activation__init(&act);
    act.contract = (char *)"fee-control";
    act.version = (uint32_t)version;
    act.activate_at_height = height;
    act.vee = &vee;
    gridledger__district_parameter__init(&p);
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_ACTIVATION;
    p.activation = &act;
    return submit_parameter(a, &p);
}

/*
 * param notice-templates --district D --language zh-CN|en [--file FILE]
 *   [--template KIND:RECIPIENT:TEXT]... (marketing): NoticeTemplates (grammar in params.h).
 */
static int param_notice_templates(app *a)
{
    static gl_notice_set set; /* large */
    Gridledger__DistrictParameter p;
    char err[600];
    int rc;

    if (!only_options(a, "notice-templates", "language|file|template"))
        return EXIT_USAGE;
    if (a->opt[OPT_LANGUAGE] == NULL)
        return usage("param notice-templates needs --district D and --language zh-CN|en");
    if (gl_notice_set_init(&set, a->opt[OPT_LANGUAGE], err, sizeof err) != 0)
        return usage("--language: %s", err);
    if (a->opt[OPT_FILE] != NULL) {
        FILE *f = strcmp(a->opt[OPT_FILE], "-") == 0 ? stdin : fopen(a->opt[OPT_FILE], "r");
        if (f == NULL) {
            fprintf(stderr, "error: cannot open %s: %s\n", a->opt[OPT_FILE], strerror(errno));
            return EXIT_NOINPUT;
        }
        int r = gl_notice_set_read(&set, f, a->opt[OPT_FILE], err, sizeof err);
        if (f != stdin)
            fclose(f);
        if (r != 0) {
            fprintf(stderr, "%s\n", err);
            rc = r == -2 ? EXIT_IO : EXIT_DATAERR;
            goto end;
        }
    }
    for (int i = 0; i < a->ntemplates; i++) {
        if (gl_notice_set_add(&set, a->templates[i], err, sizeof err) != 0) {
            rc = usage("--template: %s", err);
            goto end;
        }
    }
    gridledger__district_parameter__init(&p);
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_NOTICE_TEMPLATES;
    p.notice_templates = &set.msg;
    rc = submit_parameter(a, &p);
end:
    gl_notice_set_free(&set);
    return rc;
}

/* param customer|tariff|thresholds|notice-templates|activation --district D ... [--chain MAIN]
 * (marketing; admin for activation) */
int cmd_param(app *a)
{
    if (a->npos != 2)
        return usage("param needs a kind: customer, tariff, thresholds, notice-templates or "
                     "activation");
    if (a->opt[OPT_DISTRICT] == NULL || a->opt[OPT_DISTRICT][0] == 0)
        return usage("param %s needs --district D", a->pos[1]);
    if (strcmp(a->pos[1], "customer") == 0)
        return param_customer(a);
    if (strcmp(a->pos[1], "tariff") == 0)
        return param_tariff(a);
    if (strcmp(a->pos[1], "thresholds") == 0)
        return param_thresholds(a);
    if (strcmp(a->pos[1], "notice-templates") == 0)
        return param_notice_templates(a);
    if (strcmp(a->pos[1], "activation") == 0)
        return param_activation(a);
    return usage("unknown param kind %s (customer, tariff, thresholds, notice-templates, "
                 "activation)", a->pos[1]);
}

/* pay --district D --account A --amount FEN --serial S [--reverses SERIAL] [--chain MAIN]
 * (marketing); with --reverses a reversal (冲正): amount_fen = -FEN, reverses_serial = SERIAL. */
int cmd_pay(app *a)
{
    Gridledger__Payment pay;
    Gridledger__DistrictParameter p;
    long long amount;
    if (a->opt[OPT_DISTRICT] == NULL || a->opt[OPT_ACCOUNT] == NULL || a->opt[OPT_SERIAL] == NULL ||
        a->opt[OPT_DISTRICT][0] == 0 || a->opt[OPT_ACCOUNT][0] == 0 || a->opt[OPT_SERIAL][0] == 0)
        return usage("pay needs --district D --account A --amount FEN --serial S%s",
                     a->opt[OPT_REVERSES] != NULL ? " (--serial: the reversal's own serial)" : "");
    if (a->opt[OPT_AMOUNT] != NULL && a->opt[OPT_AMOUNT][0] == '-')
        return usage("--amount %s: give the amount positive (a reversal takes the reversed "
                     "payment's amount with --reverses and is sent negative)", a->opt[OPT_AMOUNT]);
    if (fen_option(a, OPT_AMOUNT, 1, 1, &amount) != 0)
        return EXIT_USAGE;
    if (amount > 1000000000000000ll)
        return usage("--amount %lld fen is above the limit of 1000000000000000 fen", amount);
    if (strchr(a->opt[OPT_SERIAL], '/') != NULL)
        return usage("--serial %s must not contain '/'", a->opt[OPT_SERIAL]);
    gridledger__payment__init(&pay);
    gridledger__district_parameter__init(&p);
    if (a->opt[OPT_REVERSES] != NULL) {
        const char *rev = a->opt[OPT_REVERSES];
        if (rev[0] == 0 || strchr(rev, '/') != NULL)
            return usage("--reverses needs the serial of the payment to reverse (without '/')");
        if (strcmp(rev, a->opt[OPT_SERIAL]) == 0)
            return usage("a reversal needs its own serial, not the reversed one (%s)", rev);
        pay.reverses_serial = (char *)rev;
        amount = -amount; /* 冲正: minus the reversed payment's amount */
    }
    pay.account = (char *)a->opt[OPT_ACCOUNT];
    pay.amount_fen = amount;
    pay.serial = (char *)a->opt[OPT_SERIAL];
    pay.paid_ms = wall_ms();
    p.body_case = GRIDLEDGER__DISTRICT_PARAMETER__BODY_PAYMENT;
    p.payment = &pay;
    return submit_parameter(a, &p);
}

/* ack COMMAND_ID [--failed] [--detail TEXT] [--chain D] (device) */
int cmd_ack(app *a)
{
    Gridledger__CommandAck ack;
    Gridledger__TxPayload payload;
    if (a->npos != 2 || a->pos[1][0] == 0)
        return usage("ack needs a COMMAND_ID");
    gridledger__command_ack__init(&ack);
    ack.command_id = (char *)a->pos[1];
    ack.success = a->opt[OPT_FAILED] == NULL;
    ack.detail = (char *)(a->opt[OPT_DETAIL] != NULL ? a->opt[OPT_DETAIL] : "");
    gridledger__tx_payload__init(&payload);
    payload.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_COMMAND_ACK;
    payload.command_ack = &ack;
    return submit_command(a, &payload);
}

/* ---- account, warnings, disconnected, commands, watch-commands, watch-notices ---- */

/* The full enum value name ("ACCOUNT_STATE_NORMAL"), as the Python client prints it; the
 * number when the value has no name. */
static void jw_enum(jw *w, const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    if (e != NULL)
        jw_str(w, e->name);
    else
        jw_i64(w, v);
}

static void print_account_fields(jw *w, const Gridledger__Account *x)
{
    jw_open(w, '{');
    jw_kstr(w, "account", x->account);
    jw_kstr(w, "meter_id", x->meter_id);
    jw_ki64(w, "balance_fen", x->balance_fen);
    jw_key(w, "state");
    jw_enum(w, &gridledger__account_state__descriptor, (int)x->state);
    jw_kbool(w, "protected_supply", x->protected_supply);
    jw_ki64(w, "last_reading_ms", x->last_reading_ms);
    jw_ku64(w, "last_total", x->last_total);
    jw_ki64(w, "cycle_start_ms", x->cycle_start_ms);
    jw_ku64(w, "cycle_energy", x->cycle_energy);
    jw_key(w, "periods");
    jw_open(w, '[');
    for (size_t i = 0; i < x->n_periods; i++) {
        jw_open(w, '{');
        jw_kstr(w, "period", x->periods[i]->period);
        jw_ku64(w, "energy", x->periods[i]->energy);
        jw_ki64(w, "charge_fen", x->periods[i]->charge_fen);
        jw_ki64(w, "line_price", x->periods[i]->line_price);
        jw_ku64(w, "line_energy", x->periods[i]->line_energy);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_key(w, "tiers");
    jw_open(w, '[');
    for (size_t i = 0; i < x->n_tiers; i++) {
        jw_open(w, '{');
        jw_ku64(w, "tier", x->tiers[i]->tier);
        jw_ku64(w, "energy", x->tiers[i]->energy);
        jw_ki64(w, "charge_fen", x->tiers[i]->charge_fen);
        jw_ki64(w, "line_price", x->tiers[i]->line_price);
        jw_ku64(w, "line_energy", x->tiers[i]->line_energy);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_ki64(w, "cycle_charged_fen", x->cycle_charged_fen);
    jw_ki64(w, "fixed_charged_fen", x->fixed_charged_fen);
    jw_ki64(w, "total_charged_fen", x->total_charged_fen);
    jw_ki64(w, "total_paid_fen", x->total_paid_fen);
    jw_close(w, '}');
}

static void print_customer(jw *w, const Gridledger__CustomerArchive *c)
{
    if (c == NULL) {
        jw_null(w);
        return;
    }
    jw_open(w, '{');
    jw_kstr(w, "account", c->account);
    jw_kstr(w, "meter_id", c->meter_id);
    jw_kstr(w, "phase", c->phase);
    jw_kstr(w, "tariff_id", c->tariff_id);
    jw_kbool(w, "protected_supply", c->protected_supply);
    jw_kstr(w, "contact", c->contact);
    jw_ku64(w, "cycle_start_month", c->cycle_start_month);
    jw_ku64(w, "cycle_start_day", c->cycle_start_day);
    jw_kstr(w, "thresholds_id", c->thresholds_id);
    jw_ku64(w, "rollover", c->rollover);
    jw_ku64(w, "interval_minutes", c->interval_minutes);
    jw_kbool(w, "generating", c->generating);
    jw_ki64(w, "opening_balance_fen", c->opening_balance_fen);
    jw_close(w, '}');
}

/* account ACCOUNT [--chain D] */
int cmd_account(app *a)
{
    Gridledger__GetAccountResponse *r = NULL;
    jw w;
    if (a->npos != 2 || a->pos[1][0] == 0)
        return usage("account needs an ACCOUNT");
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_get_account(a->client, a->pos[1], a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    jw_init(&w, stdout, 1);
    jw_open(&w, '{');
    jw_key(&w, "account");
    if (r->account != NULL)
        print_account_fields(&w, r->account);
    else
        jw_null(&w);
    jw_key(&w, "customer");
    print_customer(&w, r->customer);
    jw_close(&w, '}');
    gridledger__get_account_response__free_unpacked(r, NULL);
    return flush_stdout();
}

static int limit_option(app *a, uint32_t *limit)
{
    unsigned long long v = 0;
    if (a->opt[OPT_LIMIT] != NULL && parse_u64(a->opt[OPT_LIMIT], UINT32_MAX, &v) != 0) {
        usage("--limit %s is not a number", a->opt[OPT_LIMIT]);
        return -1;
    }
    *limit = (uint32_t)v;
    return 0;
}

/* warnings | disconnected [--chain D] [--limit N]: one JSON line per account. */
int cmd_accounts(app *a)
{
    Gridledger__ListAccountsResponse *r = NULL;
    uint32_t limit;
    int warnings = strcmp(a->pos[0], "warnings") == 0;
    if (limit_option(a, &limit) != 0)
        return EXIT_USAGE;
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_list_accounts(a->client,
                         warnings ? GRIDLEDGER__ACCOUNT_STATE__ACCOUNT_STATE_NORMAL
                                  : GRIDLEDGER__ACCOUNT_STATE__ACCOUNT_STATE_DISCONNECTED,
                         warnings, limit, a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    for (size_t i = 0; i < r->n_accounts; i++) {
        jw w;
        jw_init(&w, stdout, 0);
        print_account_fields(&w, r->accounts[i]);
    }
    gridledger__list_accounts_response__free_unpacked(r, NULL);
    return flush_stdout();
}

static void print_command(jw *w, const Gridledger__ControlCommand *c, const submitted *ack)
{
    jw_open(w, '{');
    jw_kstr(w, "command_id", c->command_id);
    jw_kstr(w, "district", c->district);
    jw_kstr(w, "account", c->account);
    jw_kstr(w, "meter_id", c->meter_id);
    jw_key(w, "kind");
    jw_enum(w, &gridledger__command_kind__descriptor, (int)c->kind);
    jw_key(w, "status");
    jw_enum(w, &gridledger__command_status__descriptor, (int)c->status);
    jw_ki64(w, "issued_ms", c->issued_ms);
    jw_ki64(w, "valid_until_ms", c->valid_until_ms);
    jw_ku64(w, "issued_height", c->issued_height);
    jw_kstr(w, "detail", c->detail);
    if (ack != NULL) {
        jw_key(w, "ack");
        jw_open(w, '{');
        print_submitted_fields(w, ack);
        jw_close(w, '}');
    }
    jw_close(w, '}');
}

/* commands --district D [--status issued|acknowledged|failed|expired] [--limit N] */
int cmd_commands(app *a)
{
    static const char *const names[] = {"issued", "acknowledged", "failed", "expired"};
    Gridledger__ListCommandsResponse *r = NULL;
    Gridledger__CommandStatus status = GRIDLEDGER__COMMAND_STATUS__COMMAND_STATUS_UNSPECIFIED;
    uint32_t limit;
    if (a->opt[OPT_DISTRICT] == NULL || a->opt[OPT_DISTRICT][0] == 0 ||
        strlen(a->opt[OPT_DISTRICT]) > GL_CHAIN_ID_MAX)
        return usage("commands needs --district D (the district chain id)");
    if (a->opt[OPT_STATUS] != NULL) {
        int found = 0;
        for (int k = 0; k < 4; k++)
            if (strcmp(a->opt[OPT_STATUS], names[k]) == 0) {
                status = (Gridledger__CommandStatus)(k + 1);
                found = 1;
            }
        if (!found)
            return usage("--status is issued, acknowledged, failed or expired");
    }
    if (limit_option(a, &limit) != 0)
        return EXIT_USAGE;
    a->opts.chain_id = a->opt[OPT_DISTRICT];
    if (connect_app(a) != 0)
        return EXIT_RPC;
    if (gl_list_commands(a->client, status, limit, a->timeout, &r, &a->st) != GL_OK)
        return rpc_error(&a->st);
    for (size_t i = 0; i < r->n_commands; i++) {
        jw w;
        jw_init(&w, stdout, 0);
        print_command(&w, r->commands[i], NULL);
    }
    gridledger__list_commands_response__free_unpacked(r, NULL);
    return flush_stdout();
}

/*
 * watch-commands [--chain D] [--ack] [--count N] (device): one JSON line per command. With
 * --ack each command is acknowledged as a success (CommandAck signed with --cert/--key)
 * over a second connection (a connection carries one call at a time) and the line gets
 * "ack": {"tx_id", "height", "index"}.
 */
int cmd_watch_commands(app *a)
{
    unsigned long long count = 0, seen = 0;
    gl_stream *s = NULL;
    gl_client *acker = NULL;
    gl_signer *sg = NULL;
    Gridledger__ChainInfo *ci = NULL;
    Gridledger__ControlCommand *cmd = NULL;
    char err[GL_STATUS_MESSAGE_MAX];
    const char *chain_id = a->opt[OPT_CHAIN];
    int rc = 0;

    if (a->opt[OPT_COUNT] != NULL && (parse_u64(a->opt[OPT_COUNT], UINT64_MAX, &count) != 0 || count == 0))
        return usage("--count %s is not a positive number", a->opt[OPT_COUNT]);
    if (a->opt[OPT_ACK] != NULL) {
        sg = gl_signer_load(a->opts.cert_path, a->opts.key_path, err, sizeof err);
        if (sg == NULL) {
            fprintf(stderr, "error: %s: cannot sign: %s\n", gl_status_code_name(GL_INVALID_ARGUMENT), err);
            return EXIT_RPC;
        }
        acker = gl_connect(&a->opts, err, sizeof err);
        if (acker == NULL) {
            fprintf(stderr, "error: %s\n", err);
            rc = EXIT_RPC;
            goto end;
        }
        if (chain_id == NULL) {
            if (gl_get_chain_info(acker, DEFAULT_UNARY_TIMEOUT_MS, &ci, &a->st) != GL_OK) {
                rc = rpc_error(&a->st);
                goto end;
            }
            chain_id = ci->chain_id;
        }
    }
    if ((rc = connect_app(a)) != 0)
        goto end;
    s = gl_subscribe_commands(a->client, a->timeout, &a->st);
    if (s == NULL) {
        rc = rpc_error(&a->st);
        goto end;
    }
    while (gl_subscribe_commands_next(s, &cmd, &a->st) == 1) {
        submitted ack;
        if (sg != NULL) {
            Gridledger__CommandAck body;
            Gridledger__TxPayload payload;
            gridledger__command_ack__init(&body);
            body.command_id = cmd->command_id;
            body.success = 1;
            gridledger__tx_payload__init(&payload);
            payload.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_COMMAND_ACK;
            payload.command_ack = &body;
            if ((rc = sign_submit(a, acker, sg, chain_id, &payload, &ack)) != 0)
                goto end;
        }
        jw w;
        jw_init(&w, stdout, 0);
        print_command(&w, cmd, sg != NULL ? &ack : NULL);
        gridledger__control_command__free_unpacked(cmd, NULL);
        cmd = NULL;
        if ((rc = flush_stdout()) != 0)
            goto end;
        if (count != 0 && ++seen >= count)
            goto end; /* gl_stream_free cancels the subscription */
    }
    if (a->st.code != GL_OK)
        rc = rpc_error(&a->st);
end:
    if (cmd != NULL)
        gridledger__control_command__free_unpacked(cmd, NULL);
    gl_stream_free(s);
    if (ci != NULL)
        gridledger__chain_info__free_unpacked(ci, NULL);
    gl_close(acker);
    gl_signer_free(sg);
    return rc;
}

/* watch-notices [--chain D] [--from H] [--count N] (marketing): one JSON line per notice. */
int cmd_watch_notices(app *a)
{
    unsigned long long from = 0, count = 0, seen = 0;
    Gridledger__Notice *n = NULL;
    int rc = 0;
    if (a->opt[OPT_FROM] != NULL && parse_u64(a->opt[OPT_FROM], UINT64_MAX, &from) != 0)
        return usage("--from %s is not a block height", a->opt[OPT_FROM]);
    if (a->opt[OPT_COUNT] != NULL && (parse_u64(a->opt[OPT_COUNT], UINT64_MAX, &count) != 0 || count == 0))
        return usage("--count %s is not a positive number", a->opt[OPT_COUNT]);
    if (connect_app(a) != 0)
        return EXIT_RPC;
    gl_stream *s = gl_subscribe_notices(a->client, from, a->timeout, &a->st);
    if (s == NULL)
        return rpc_error(&a->st);
    while (gl_subscribe_notices_next(s, &n, &a->st) == 1) {
        jw w;
        jw_init(&w, stdout, 0);
        jw_open(&w, '{');
        jw_kstr(&w, "notice_id", n->notice_id);
        jw_kstr(&w, "district", n->district);
        jw_kstr(&w, "account", n->account);
        jw_key(&w, "kind");
        jw_enum(&w, &gridledger__notice_kind__descriptor, (int)n->kind);
        jw_kstr(&w, "recipient", n->recipient);
        jw_kstr(&w, "contact", n->contact);
        jw_kstr(&w, "text", n->text);
        jw_ki64(&w, "issued_ms", n->issued_ms);
        jw_ku64(&w, "height", n->height);
        jw_kstr(&w, "language", n->language);
        jw_close(&w, '}');
        gridledger__notice__free_unpacked(n, NULL);
        n = NULL;
        if ((rc = flush_stdout()) != 0)
            goto end;
        if (count != 0 && ++seen >= count)
            goto end;
    }
    if (a->st.code != GL_OK)
        rc = rpc_error(&a->st);
end:
    gl_stream_free(s);
    return rc;
}

/* ---- district results (main chain) ---------------------------------------------------------- */

/* Terminal columns of UTF-8 `s`: East Asian wide characters take two. */
static size_t display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        unsigned long cp;
        int more = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc0 ? 1 : 0;
        cp = more == 0 ? *p : more == 1 ? (*p & 0x1fu) : more == 2 ? (*p & 0x0fu) : (*p & 0x07u);
        p++;
        for (int i = 0; i < more && (*p & 0xc0) == 0x80; i++, p++)
            cp = (cp << 6) | (*p & 0x3f);
        int wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                   (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                   (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                   (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
        w += wide ? 2 : 1;
    }
    return w;
}

#define DR_COLS 7

/* `cell` padded to `width` columns: right-aligned (money) or left-aligned. */
static void print_cell(const char *cell, size_t width, int right, int last)
{
    size_t pad = width - display_width(cell);
    if (right)
        printf("%*s%s", (int)pad, "", cell);
    else if (last)
        fputs(cell, stdout);
    else
        printf("%s%*s", cell, (int)pad, "");
}

/* A page as JSON, as the Python client prints it: states by name, amounts in fen. */
static void print_district_page_json(const Gridledger__GetDistrictResultsResponse *r)
{
    jw w;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    jw_kstr(&w, "district", r->district);
    jw_key(&w, "totals");
    if (r->totals != NULL)
        jw_message(&w, &r->totals->base);
    else
        jw_null(&w);
    jw_key(&w, "accounts");
    jw_open(&w, '[');
    for (size_t i = 0; i < r->n_accounts; i++) {
        const Gridledger__AccountResult *x = r->accounts[i];
        jw_open(&w, '{');
        jw_kstr(&w, "account", x->account);
        jw_ki64(&w, "balance_fen", x->balance_fen);
        jw_kstr(&w, "state", gl_account_state_name((Gridledger__AccountState)x->state));
        jw_ki64(&w, "charged_fen", x->charged_fen);
        jw_ki64(&w, "cycle_start_ms", x->cycle_start_ms);
        jw_ki64(&w, "cycle_charged_fen", x->cycle_charged_fen);
        jw_ki64(&w, "total_charged_fen", x->total_charged_fen);
        jw_ki64(&w, "total_paid_fen", x->total_paid_fen);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_kstr(&w, "next_after", r->next_after);
    jw_key(&w, "warning");
    jw_open(&w, '[');
    for (size_t i = 0; i < r->n_warning; i++)
        jw_str(&w, r->warning[i]);
    jw_close(&w, ']');
    jw_key(&w, "disconnected");
    jw_open(&w, '[');
    for (size_t i = 0; i < r->n_disconnected; i++)
        jw_str(&w, r->disconnected[i]);
    jw_close(&w, ']');
    jw_close(&w, '}');
}

/* The report for people (the same as the Python client's render.district_results_text). */
static void print_district_report(Gridledger__GetDistrictResultsResponse **pages, size_t n,
                                  const char *main_chain)
{
    static const char *const header[DR_COLS] = {"ACCOUNT", "BALANCE", "STATE", "CYCLE CHARGED",
                                                "TOTAL CHARGED", "TOTAL PAID", "CYCLE START (UTC)"};
    const Gridledger__GetDistrictResultsResponse *first = pages[0];
    const Gridledger__UplinkSummary *t = first->totals;
    char y[32];
    size_t width[DR_COLS], rows = 0;

    printf("district %s", first->district);
    if (main_chain != NULL)
        printf(" (main chain %s)", main_chain);
    printf("\n");
    printf("totals: %llu transactions, %llu readings accepted, %llu billed, charged %s yuan, "
           "%u commands, %u notices, %llu parameters taken\n",
           (unsigned long long)(t ? t->transactions : 0), (unsigned long long)(t ? t->readings_accepted : 0),
           (unsigned long long)(t ? t->readings_billed : 0), gl_yuan(t ? t->charged_fen : 0, y),
           t ? t->commands_issued : 0, t ? t->notices_issued : 0,
           (unsigned long long)(t ? t->downlink_count : 0));
    for (int list = 0; list < 2; list++) {
        size_t shown = 0;
        fputs(list == 0 ? "warning: " : "disconnected: ", stdout);
        for (size_t p = 0; p < n; p++) {
            size_t m = list == 0 ? pages[p]->n_warning : pages[p]->n_disconnected;
            char **names = list == 0 ? pages[p]->warning : pages[p]->disconnected;
            for (size_t i = 0; i < m; i++)
                printf("%s%s", shown++ ? ", " : "", names[i]);
        }
        printf("%s\n", shown ? "" : "none");
    }
    for (int k = 0; k < DR_COLS; k++)
        width[k] = display_width(header[k]);
    /* Two passes over the rows: widths, then printing. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (rows == 0) {
                printf("no accounts\n");
                break;
            }
            printf("amounts in yuan\n");
            for (int k = 0; k < DR_COLS; k++) {
                print_cell(header[k], width[k], k == 1 || (k >= 3 && k <= 5), k == DR_COLS - 1);
                fputs(k == DR_COLS - 1 ? "\n" : "  ", stdout);
            }
        }
        for (size_t p = 0; p < n; p++) {
            for (size_t i = 0; i < pages[p]->n_accounts; i++) {
                const Gridledger__AccountResult *x = pages[p]->accounts[i];
                char cells[DR_COLS][64];
                snprintf(cells[0], sizeof cells[0], "%s", x->account);
                gl_yuan(x->balance_fen, cells[1]);
                snprintf(cells[2], sizeof cells[2], "%s",
                         gl_account_state_name((Gridledger__AccountState)x->state));
                gl_yuan(x->cycle_charged_fen, cells[3]);
                gl_yuan(x->total_charged_fen, cells[4]);
                gl_yuan(x->total_paid_fen, cells[5]);
                if (x->cycle_start_ms > 0) {
                    time_t secs = (time_t)(x->cycle_start_ms / 1000);
                    struct tm tmv;
                    gmtime_r(&secs, &tmv);
                    strftime(cells[6], sizeof cells[6], "%Y-%m-%d %H:%M", &tmv);
                } else {
                    snprintf(cells[6], sizeof cells[6], "-");
                }
                if (pass == 0) {
                    rows++;
                    for (int k = 0; k < DR_COLS; k++)
                        if (display_width(cells[k]) > width[k])
                            width[k] = display_width(cells[k]);
                    continue;
                }
                for (int k = 0; k < DR_COLS; k++) {
                    print_cell(cells[k], width[k], k == 1 || (k >= 3 && k <= 5), k == DR_COLS - 1);
                    fputs(k == DR_COLS - 1 ? "\n" : "  ", stdout);
                }
            }
        }
    }
    const char *next = pages[n - 1]->next_after;
    if (next != NULL && next[0] != 0)
        printf("more accounts after %s (--after %s, or --all)\n", next, next);
}

/*
 * district-results --district D [--chain MAIN] [--limit N] [--after ACCOUNT] [--all] [--json]:
 * FeeControl/GetDistrictResults on the main chain, one page (or every page with --all) as a
 * report for people, or one JSON line per page.
 */
int cmd_district_results(app *a)
{
    Gridledger__GetDistrictResultsResponse **pages = NULL;
    size_t n = 0;
    uint32_t limit;
    int rc = 0;
    char after[1024];

    if (a->opt[OPT_DISTRICT] == NULL || a->opt[OPT_DISTRICT][0] == 0)
        return usage("district-results needs --district D");
    if (limit_option(a, &limit) != 0)
        return EXIT_USAGE;
    snprintf(after, sizeof after, "%s", a->opt[OPT_AFTER] != NULL ? a->opt[OPT_AFTER] : "");
    if ((rc = connect_app(a)) != 0)
        return rc;
    for (;;) {
        Gridledger__GetDistrictResultsResponse *r = NULL;
        if (gl_district_results(a->client, a->opt[OPT_DISTRICT], after, limit, a->timeout, &r,
                                &a->st) != GL_OK) {
            rc = rpc_error(&a->st);
            goto end;
        }
        Gridledger__GetDistrictResultsResponse **grown = realloc(pages, (n + 1) * sizeof *pages);
        if (grown == NULL) {
            gridledger__get_district_results_response__free_unpacked(r, NULL);
            fprintf(stderr, "error: out of memory\n");
            rc = 1;
            goto end;
        }
        pages = grown;
        pages[n++] = r;
        if (a->opt[OPT_ALL] == NULL || r->next_after == NULL || r->next_after[0] == 0)
            break;
        if (strcmp(r->next_after, after) <= 0 || strlen(r->next_after) >= sizeof after) {
            fprintf(stderr, "error: %s: GetDistrictResults after \"%s\" answered next_after "
                    "\"%s\": no progress\n", gl_status_code_name(GL_INTERNAL), after, r->next_after);
            rc = EXIT_RPC;
            goto end;
        }
        snprintf(after, sizeof after, "%s", r->next_after);
    }
    if (a->opt[OPT_JSON] != NULL) {
        for (size_t i = 0; i < n; i++)
            print_district_page_json(pages[i]);
    } else {
        print_district_report(pages, n, a->opt[OPT_CHAIN]);
    }
    rc = flush_stdout();
end:
    for (size_t i = 0; i < n; i++)
        gridledger__get_district_results_response__free_unpacked(pages[i], NULL);
    free(pages);
    return rc;
}
