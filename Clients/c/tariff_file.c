/*
 * tariff_file.c - the line-based tariff file of tariff_file.h (grammar there).
 */
#include "tariff_file.h"
#include "gl_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4096
#define MAX_FIELDS (GL_TARIFF_MAX_TIERS + 2)
#define UNSET 0xff

/* Splits `line` in place at spaces/tabs (comments and CR already removed). */
static size_t split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0)
            return n;
        if (n == max)
            return max + 1;
        fields[n++] = p;
        while (*p != 0 && *p != ' ' && *p != '\t')
            p++;
        if (*p != 0)
            *p++ = 0;
    }
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    if (*s != '-' && (*s < '0' || *s > '9'))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0)
        return -1;
    *out = v;
    return 0;
}

/* "N" or "N-M" within lo..hi. */
static int parse_range(const char *s, unsigned lo, unsigned hi, unsigned *a, unsigned *b)
{
    char buf[32];
    uint64_t x, y;
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *dash = strchr(buf, '-');
    if (dash != NULL)
        *dash = 0;
    if (parse_u64(buf, &x) != 0 || (dash != NULL && parse_u64(dash + 1, &y) != 0))
        return -1;
    if (dash == NULL)
        y = x;
    if (x < lo || y > hi || x > y)
        return -1;
    *a = (unsigned)x;
    *b = (unsigned)y;
    return 0;
}

static int copy_name(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n > GL_TARIFF_NAME_MAX)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int gl_tariff_read(FILE *f, const char *name, gl_tariff *t, char *err, size_t errlen)
{
    char line[LINE_MAX_BYTES + 2];
    char *fld[MAX_FIELDS + 1];
    unsigned long lineno = 0;
    int seen_id = 0, seen_offset = 0, seen_cycle = 0, seen_limits = 0, seen_sur = 0, seen_fixed = 0;
    size_t n_sur = 0;

    memset(t, 0, sizeof *t);
    gridledger__tariff__init(&t->msg);
    memset(t->weekday, UNSET, sizeof t->weekday);
    memset(t->weekend, UNSET, sizeof t->weekend);
    t->msg.cycle = GRIDLEDGER__BILLING_CYCLE__BILLING_CYCLE_MONTHLY;

#define BAD(...)                                                                           \
    do {                                                                                   \
        char why_[300];                                                                    \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                          \
        if (lineno > 0)                                                                    \
            set_err(err, errlen, "%s:%lu: %s", name, lineno, why_);                        \
        else                                                                               \
            set_err(err, errlen, "%s: %s", name, why_);                                    \
        return GL_TARIFF_EDATA;                                                            \
    } while (0)
#define ONCE(flag, key)                                                                    \
    do {                                                                                   \
        if (flag)                                                                          \
            BAD("%s given twice", key);                                                    \
        flag = 1;                                                                          \
    } while (0)

    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > LINE_MAX_BYTES && line[len - 1] != '\n')
            BAD("line longer than %d bytes", LINE_MAX_BYTES);
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = 0;
        line[strcspn(line, "\r\n")] = 0;
        size_t n = split(line, fld, MAX_FIELDS);
        if (n == 0)
            continue;
        if (n > MAX_FIELDS)
            BAD("too many fields");
        const char *key = fld[0];
        if (strcmp(key, "tariff_id") == 0) {
            ONCE(seen_id, key);
            if (n != 2 || copy_name(t->tariff_id, fld[1]) != 0)
                BAD("tariff_id needs one id of 1..%d bytes", GL_TARIFF_NAME_MAX);
        } else if (strcmp(key, "utc_offset_minutes") == 0) {
            int64_t v;
            ONCE(seen_offset, key);
            if (n != 2 || parse_i64(fld[1], &v) != 0 || v < -24 * 60 || v > 24 * 60)
                BAD("utc_offset_minutes needs minutes (-1440..1440)");
            t->msg.utc_offset_minutes = (int32_t)v;
        } else if (strcmp(key, "period") == 0) {
            int64_t price;
            size_t i = t->msg.n_periods;
            if (n != 3 || parse_i64(fld[2], &price) != 0)
                BAD("period needs NAME PRICE (0.0001 CNY/kWh)");
            if (i == GL_TARIFF_MAX_PERIODS)
                BAD("more than %d periods", GL_TARIFF_MAX_PERIODS);
            if (copy_name(t->period_names[i], fld[1]) != 0)
                BAD("period name is longer than %d bytes", GL_TARIFF_NAME_MAX);
            gridledger__tariff_period__init(&t->periods[i]);
            t->periods[i].name = t->period_names[i];
            t->periods[i].base_price = price;
            t->period_ptrs[i] = &t->periods[i];
            t->msg.n_periods = i + 1;
        } else if (strcmp(key, "cycle") == 0) {
            ONCE(seen_cycle, key);
            if (n == 2 && strcmp(fld[1], "monthly") == 0)
                t->msg.cycle = GRIDLEDGER__BILLING_CYCLE__BILLING_CYCLE_MONTHLY;
            else if (n == 2 && strcmp(fld[1], "annual") == 0)
                t->msg.cycle = GRIDLEDGER__BILLING_CYCLE__BILLING_CYCLE_ANNUAL;
            else
                BAD("cycle is monthly or annual");
        } else if (strcmp(key, "tier_limits") == 0) {
            ONCE(seen_limits, key);
            if (n - 1 > GL_TARIFF_MAX_TIERS)
                BAD("more than %d tier limits", GL_TARIFF_MAX_TIERS);
            for (size_t i = 1; i < n; i++) {
                if (parse_u64(fld[i], &t->tier_limits[i - 1]) != 0)
                    BAD("tier limit %s is not a number (0.01 kWh)", fld[i]);
                if (i > 1 && t->tier_limits[i - 1] <= t->tier_limits[i - 2])
                    BAD("tier limits must ascend");
            }
            t->msg.n_tier_limits = n - 1;
        } else if (strcmp(key, "tier_surcharges") == 0) {
            ONCE(seen_sur, key);
            if (n - 1 > GL_TARIFF_MAX_TIERS)
                BAD("more than %d tier surcharges", GL_TARIFF_MAX_TIERS);
            for (size_t i = 1; i < n; i++)
                if (parse_i64(fld[i], &t->tier_surcharges[i - 1]) != 0)
                    BAD("tier surcharge %s is not a number (0.0001 CNY/kWh)", fld[i]);
            n_sur = n - 1;
        } else if (strcmp(key, "fixed_charge_fen") == 0) {
            ONCE(seen_fixed, key);
            if (n != 2 || parse_i64(fld[1], &t->msg.fixed_charge_fen) != 0)
                BAD("fixed_charge_fen needs an amount in fen");
        } else if (strcmp(key, "weekday") == 0 || strcmp(key, "weekend") == 0 ||
                   strcmp(key, "all") == 0) {
            unsigned m0, m1, h0, h1;
            uint64_t idx;
            if (n != 4 || parse_range(fld[1], 1, 12, &m0, &m1) != 0 ||
                parse_range(fld[2], 0, 23, &h0, &h1) != 0 || parse_u64(fld[3], &idx) != 0 ||
                idx >= GL_TARIFF_MAX_PERIODS)
                BAD("%s needs MONTHS (1..12, N or N-M) HOURS (0..23) PERIOD_INDEX", key);
            for (unsigned m = m0; m <= m1; m++) {
                for (unsigned h = h0; h <= h1; h++) {
                    if (key[0] != 'w' || strcmp(key, "weekday") == 0)
                        t->weekday[(m - 1) * 24 + h] = (uint8_t)idx;
                    if (key[0] != 'w' || strcmp(key, "weekend") == 0)
                        t->weekend[(m - 1) * 24 + h] = (uint8_t)idx;
                }
            }
        } else {
            BAD("unknown entry %s", key);
        }
    }
    if (ferror(f)) {
        set_err(err, errlen, "%s: read error", name);
        return GL_TARIFF_EIO;
    }
    lineno = 0; /* whole-file checks */
    if (!seen_id)
        BAD("no tariff_id");
    if (t->msg.n_periods == 0)
        BAD("no period");
    if (n_sur != t->msg.n_tier_limits)
        BAD("%zu tier limits but %zu tier surcharges (one each per tier)", t->msg.n_tier_limits,
            n_sur);
    for (int s = 0; s < 2; s++) {
        const uint8_t *cells = s == 0 ? t->weekday : t->weekend;
        for (int i = 0; i < GL_TARIFF_CELLS; i++) {
            if (cells[i] == UNSET)
                BAD("%s schedule: month %d hour %d is not set", s == 0 ? "weekday" : "weekend",
                    i / 24 + 1, i % 24);
            if (cells[i] >= t->msg.n_periods)
                BAD("%s schedule: month %d hour %d names period %d of %zu", s == 0 ? "weekday" : "weekend",
                    i / 24 + 1, i % 24, cells[i], t->msg.n_periods);
        }
    }
#undef ONCE
#undef BAD
    t->msg.tariff_id = t->tariff_id;
    t->msg.periods = t->period_ptrs;
    t->msg.weekday_schedule.data = t->weekday;
    t->msg.weekday_schedule.len = GL_TARIFF_CELLS;
    t->msg.weekend_schedule.data = t->weekend;
    t->msg.weekend_schedule.len = GL_TARIFF_CELLS;
    t->msg.tier_limits = t->tier_limits;
    t->msg.n_tier_surcharges = n_sur;
    t->msg.tier_surcharges = t->tier_surcharges;
    return GL_TARIFF_OK;
}
