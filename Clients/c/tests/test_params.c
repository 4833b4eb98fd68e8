/*
 * test_params.c - issue 10 parameters without a node (params.h): the VEE bounds of a contract
 * activation (DOMAIN.md "Validation, estimation, editing": every threshold configurable, the
 * spike check's minimum history too; 0 = the default), notice templates (DOMAIN.md "Prepaid fee
 * control": who gets which notice; placeholders; UTF-8 Chinese texts kept byte for byte), yuan,
 * and the GetDistrictResults request and response codec (anchor.proto).
 */
#include "gridledger.h"
#include "params.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static char err[600];

static void test_vee_bounds(void)
{
    uint64_t v = 99;
    CHECK(gl_vee_parse(GL_VEE_SPIKE_FACTOR, "0", &v, err, sizeof err) == 0 && v == 0);
    CHECK(gl_vee_parse(GL_VEE_SPIKE_FACTOR, "2", &v, err, sizeof err) == 0 && v == 2);
    CHECK(gl_vee_parse(GL_VEE_SPIKE_FACTOR, "1", &v, err, sizeof err) == -1);
    CHECK(strcmp(err, "spike_factor 1 is out of range: 2..1000 times the trailing average "
                      "interval, or 0 for the default (5); a factor of 1 would hold every "
                      "reading above the average") == 0);
    CHECK(gl_vee_parse(GL_VEE_SPIKE_FACTOR, "1001", &v, err, sizeof err) == -1);
    CHECK(gl_vee_parse(GL_VEE_SUM_TOLERANCE, "-2", &v, err, sizeof err) == -1);
    CHECK(strcmp(err, "sum_tolerance must not be negative (-2); 0 means the default (2)") == 0);
    CHECK(gl_vee_parse(GL_VEE_SUM_TOLERANCE, "-0", &v, err, sizeof err) == 0 && v == 0);
    CHECK(gl_vee_parse(GL_VEE_FUTURE_TOLERANCE_MS, "5m", &v, err, sizeof err) == -1);
    CHECK(strcmp(err, "--future-tolerance-ms 5m is not a whole number") == 0);
    CHECK(gl_vee_parse(GL_VEE_FUTURE_TOLERANCE_MS, "", &v, err, sizeof err) == -1);
    CHECK(gl_vee_parse(GL_VEE_FUTURE_TOLERANCE_MS, "86400000", &v, err, sizeof err) == 0);
    CHECK(gl_vee_parse(GL_VEE_FUTURE_TOLERANCE_MS, "86400001", &v, err, sizeof err) == -1);
    CHECK(gl_vee_parse(GL_VEE_MAX_INTERPOLATION_MS, "99999999999999999999999", &v, err,
                       sizeof err) == -1);
    CHECK(strstr(err, "out of range") != NULL);
    CHECK(gl_vee_parse(GL_VEE_SPIKE_MIN_HISTORY, "11520", &v, err, sizeof err) == 0 && v == 11520);
    CHECK(gl_vee_parse(GL_VEE_SPIKE_MIN_HISTORY, "11521", &v, err, sizeof err) == -1);
    CHECK(strstr(err, "8-day trailing window") != NULL);

    Gridledger__VeeParameters vee;
    gridledger__vee_parameters__init(&vee);
    gl_vee_set(&vee, GL_VEE_SUM_TOLERANCE, 4);
    gl_vee_set(&vee, GL_VEE_SPIKE_FACTOR, 7);
    gl_vee_set(&vee, GL_VEE_FUTURE_TOLERANCE_MS, 120000);
    gl_vee_set(&vee, GL_VEE_MAX_INTERPOLATION_MS, 3600000);
    gl_vee_set(&vee, GL_VEE_SPIKE_MIN_HISTORY, 12);
    uint8_t buf[64];
    size_t n = gridledger__vee_parameters__pack(&vee, buf);
    Gridledger__VeeParameters *back = gridledger__vee_parameters__unpack(NULL, n, buf);
    CHECK(back != NULL && back->sum_tolerance == 4 && back->spike_factor == 7 &&
          back->future_tolerance_ms == 120000 && back->max_interpolation_ms == 3600000 &&
          back->spike_min_history == 12);
    gridledger__vee_parameters__free_unpacked(back, NULL);
}

#define ZH "尊敬的客户，户号{account}（表号{meter}）余额{balance}元，状态：{state}。"

static void test_notice_templates(void)
{
    gl_notice_set s;
    CHECK(gl_notice_set_init(&s, "fr", err, sizeof err) == -1);
    CHECK(strcmp(err, "language must be zh-CN or en, not \"fr\"") == 0);
    CHECK(gl_notice_set_init(&s, "zh-CN", err, sizeof err) == 0);
    CHECK(gl_notice_set_add(&s, "Warning1:customer:" ZH, err, sizeof err) == 0);
    CHECK(gl_notice_set_add(&s, "formal-disconnect:Grid-Worker:a:b {account}", err, sizeof err) == 0);
    CHECK(gl_notice_set_add(&s, "NOTICE_KIND_RECONNECT:grid_worker:{meter}", err, sizeof err) == 0);
    static const struct { const char *spec, *want; } bad[] = {
        {"warn:customer:x", "unknown notice kind \"warn\""},
        {"warning1:bank:x", "unknown recipient \"bank\" (customer or grid_worker)"},
        {"warning1:grid_worker:x", "no warning1 notice goes to the grid_worker (it goes to the customer)"},
        {"formal_disconnect:customer:x", "no formal_disconnect notice goes to the customer"},
        {"reconnect:customer:   ", "the reconnect text for the customer is empty"},
        {"reconnect:customer:{balance} {amount}", "unknown placeholder {amount}"},
        {"reconnect:customer:pay {balance", "unmatched brace"},
        {"reconnect:customer:x}", "unmatched brace"},
        {"reconnect:customer:\xff\xfe", "is not UTF-8"},
        {"reconnect", "is not KIND:RECIPIENT:TEXT"},
        {"warning1:customer:again", "two templates for warning1 to the customer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int r = gl_notice_set_add(&s, bad[i].spec, err, sizeof err);
        if (r != -1 || strstr(err, bad[i].want) == NULL) {
            fprintf(stderr, "  %s -> %d %s\n", bad[i].spec, r, err);
            CHECK(0);
        }
    }
    char longtext[2 * 501 * 3 + 32] = "reconnect:customer:";
    for (int i = 0; i < 501; i++)
        strcat(longtext, "电");
    CHECK(gl_notice_set_add(&s, longtext, err, sizeof err) == -1 && strstr(err, "501 characters") != NULL);
    CHECK(s.n == 3 && s.msg.n_templates == 3);

    /* Packed and unpacked: the UTF-8 text byte for byte, the kinds and recipients. */
    size_t len = gridledger__notice_templates__get_packed_size(&s.msg);
    uint8_t *buf = malloc(len);
    CHECK(buf != NULL);
    if (buf == NULL)
        return;
    gridledger__notice_templates__pack(&s.msg, buf);
    Gridledger__NoticeTemplates *back = gridledger__notice_templates__unpack(NULL, len, buf);
    CHECK(back != NULL && strcmp(back->language, "zh-CN") == 0 && back->n_templates == 3);
    if (back != NULL && back->n_templates == 3) {
        CHECK(back->templates[0]->kind == GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_WARNING1);
        CHECK(strcmp(back->templates[0]->recipient, "customer") == 0);
        CHECK(strcmp(back->templates[0]->text, ZH) == 0);
        CHECK(back->templates[1]->kind == GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_FORMAL_DISCONNECT);
        CHECK(strcmp(back->templates[1]->recipient, "grid_worker") == 0);
        CHECK(strcmp(back->templates[1]->text, "a:b {account}") == 0);
    }
    gridledger__notice_templates__free_unpacked(back, NULL);
    free(buf);
    gl_notice_set_free(&s);
    CHECK(gl_notice_kind_from_name("formal-disconnect") ==
          GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_FORMAL_DISCONNECT);
    CHECK(gl_notice_kind_from_name("x") == GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_UNSPECIFIED);
}

static void test_notice_file(void)
{
    gl_notice_set s;
    const char text[] = "\xef\xbb\xbf# 短信\r\n\r\n  warning2:customer:" ZH "\r\n"
                        "reconnect:grid_worker:复电 {meter}\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    CHECK(gl_notice_set_init(&s, "zh-CN", err, sizeof err) == 0);
    CHECK(f != NULL && gl_notice_set_read(&s, f, "t.txt", err, sizeof err) == 0);
    CHECK(s.n == 2 && strcmp(s.items[0].text, ZH) == 0 && strcmp(s.items[1].text, "复电 {meter}") == 0);
    if (f != NULL)
        fclose(f);
    gl_notice_set_free(&s);
    const char bad[] = "warning1:customer:ok\nwarning9:customer:x\n";
    f = fmemopen((void *)bad, sizeof bad - 1, "r");
    CHECK(gl_notice_set_init(&s, "en", err, sizeof err) == 0);
    CHECK(f != NULL && gl_notice_set_read(&s, f, "bad.txt", err, sizeof err) == -1);
    CHECK(strncmp(err, "bad.txt:2: unknown notice kind \"warning9\"", 41) == 0);
    if (f != NULL)
        fclose(f);
    gl_notice_set_free(&s);
}

static void test_yuan(void)
{
    char b[32];
    CHECK(strcmp(gl_yuan(0, b), "0.00") == 0);
    CHECK(strcmp(gl_yuan(5, b), "0.05") == 0);
    CHECK(strcmp(gl_yuan(-5, b), "-0.05") == 0);
    CHECK(strcmp(gl_yuan(123456, b), "1234.56") == 0);
    CHECK(strcmp(gl_yuan(-123456, b), "-1234.56") == 0);
    CHECK(strcmp(gl_yuan(INT64_MIN, b), "-92233720368547758.08") == 0);
}

/* GetDistrictResults: the request names the main chain, the district and the page; the
 * response's records decode (anchor.proto). */
static void test_district_results_codec(void)
{
    Gridledger__GetDistrictResultsRequest req;
    gl_district_results_request_init(&req, "main", "d1", "acc2", 50);
    uint8_t buf[256];
    size_t n = gridledger__get_district_results_request__pack(&req, buf);
    Gridledger__GetDistrictResultsRequest *r = gridledger__get_district_results_request__unpack(NULL, n, buf);
    CHECK(r != NULL && strcmp(r->chain_id, "main") == 0 && strcmp(r->district, "d1") == 0 &&
          strcmp(r->after_account, "acc2") == 0 && r->limit == 50);
    gridledger__get_district_results_request__free_unpacked(r, NULL);

    Gridledger__AccountResult a;
    gridledger__account_result__init(&a);
    a.account = (char *)"用户4";
    a.balance_fen = -250;
    a.state = GRIDLEDGER__ACCOUNT_STATE__ACCOUNT_STATE_DISCONNECTED;
    a.cycle_charged_fen = 100;
    a.total_charged_fen = 2250;
    a.total_paid_fen = 2000;
    Gridledger__AccountResult *accounts[] = {&a};
    char *disc[] = {(char *)"用户4"};
    Gridledger__UplinkSummary t;
    gridledger__uplink_summary__init(&t);
    t.charged_fen = 12345;
    Gridledger__GetDistrictResultsResponse resp;
    gridledger__get_district_results_response__init(&resp);
    resp.district = (char *)"d1";
    resp.totals = &t;
    resp.accounts = accounts;
    resp.n_accounts = 1;
    resp.disconnected = disc;
    resp.n_disconnected = 1;
    n = gridledger__get_district_results_response__pack(&resp, buf);
    Gridledger__GetDistrictResultsResponse *back = gridledger__get_district_results_response__unpack(NULL, n, buf);
    CHECK(back != NULL && back->n_accounts == 1 && back->totals != NULL && back->totals->charged_fen == 12345);
    if (back != NULL && back->n_accounts == 1) {
        CHECK(strcmp(back->accounts[0]->account, "用户4") == 0 && back->accounts[0]->balance_fen == -250);
        CHECK(strcmp(gl_account_state_name((Gridledger__AccountState)back->accounts[0]->state), "DISCONNECTED") == 0);
        CHECK(back->n_disconnected == 1 && back->n_warning == 0 && strcmp(back->next_after, "") == 0);
    }
    gridledger__get_district_results_response__free_unpacked(back, NULL);
}

int main(void)
{
    run("VEE parameters: 0 = default, bounds, negative and non-numeric refused", test_vee_bounds);
    run("notice templates: kinds, recipients, placeholders, braces, UTF-8 kept", test_notice_templates);
    run("notice template file: BOM, CRLF, comments; file:line: reason", test_notice_file);
    run("fen as yuan", test_yuan);
    run("GetDistrictResults request and response codec", test_district_results_codec);
    return check_report();
}
