/*
 * readings_csv.c - CSV of meter readings, validated field by field. Grammar and field
 * rules in readings_csv.h.
 */
#include "readings_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

const char *const gl_csv_columns[GL_CSV_FIELDS] = {
    "meter_id",       "timestamp_ms",   "energy_total", "energy_sharp",      "energy_peak",
    "energy_flat",    "energy_valley",  "energy_reverse", "voltage_a_dv",    "voltage_b_dv",
    "voltage_c_dv",   "current_a_ma",   "current_b_ma", "current_c_ma",      "active_power_w",
    "reactive_power_var", "events",
};

enum {
    COL_METER, COL_TS, COL_TOTAL, COL_SHARP, COL_PEAK, COL_FLAT, COL_VALLEY, COL_REVERSE,
    COL_VA, COL_VB, COL_VC, COL_IA, COL_IB, COL_IC, COL_P, COL_Q, COL_EVENTS,
};

/* Parsing context of one file: where we are, and the message of the first error. */
typedef struct ctx {
    const char *name;
    unsigned long line;
    char *err;
    size_t errlen;
} ctx;

static int fail(ctx *x, const char *fmt, ...)
{
    va_list ap;
    char why[400];
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (x->err != NULL && x->errlen > 0)
        snprintf(x->err, x->errlen, "%s:%lu: %s", x->name, x->line, why);
    return GL_CSV_EDATA;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * Splits `line` (NUL-terminated, no line end) into fields in place: unquoted fields are
 * trimmed of spaces/tabs, quoted ones unescaped. Sets *n (up to max; one more field than
 * max is reported as max + 1). Returns 0 or GL_CSV_EDATA.
 */
static int split(ctx *x, char *line, char **fields, int max, int *n)
{
    char *p = line;
    int count = 0;

    for (;;) {
        while (is_blank(*p))
            p++;
        char *start, *end;
        if (*p == '"') {
            /* Quoted: copy down over the doubled quotes. */
            char *w = start = ++p;
            for (;;) {
                if (*p == 0)
                    return fail(x, "field %d: unterminated quoted field (quoted fields cannot span lines)",
                                count + 1);
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            end = w;
            while (is_blank(*p))
                p++;
            if (*p != ',' && *p != 0)
                return fail(x, "field %d: characters after the closing quote", count + 1);
        } else {
            start = p;
            while (*p != ',' && *p != 0) {
                if (*p == '"')
                    return fail(x, "field %d: quote inside an unquoted field", count + 1);
                p++;
            }
            end = p;
            while (end > start && is_blank(end[-1]))
                end--;
        }
        char sep = *p;
        *end = 0;
        if (count < max + 1)
            fields[count < max ? count : max] = start;
        count++;
        if (sep == 0)
            break;
        p++; /* past the comma */
    }
    *n = count > max ? max + 1 : count;
    return 0;
}

static int parse_uint(ctx *x, const char *col, const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == 0)
        return fail(x, "%s is empty", col);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return fail(x, "%s \"%s\" is not an unsigned decimal integer", col, s);
        unsigned d = (unsigned)(*p - '0');
        if (d > max || v > (max - d) / 10)
            return fail(x, "%s %s is out of range (0 .. %llu)", col, s, (unsigned long long)max);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_int(ctx *x, const char *col, const char *s, int64_t min, int64_t max,
                     int64_t *out)
{
    int neg = *s == '-';
    /* Largest magnitude allowed: -(min) for a negative number (computed without
     * overflowing at INT64_MIN), 0 when negatives are out of range. */
    uint64_t mag, limit = !neg ? (uint64_t)max : min < 0 ? (uint64_t)(-(min + 1)) + 1u : 0u;
    if (*s == 0)
        return fail(x, "%s is empty", col);
    const char *digits = s + neg;
    if (*digits == 0)
        return fail(x, "%s \"%s\" is not a decimal integer", col, s);
    for (const char *p = digits; *p; p++)
        if (*p < '0' || *p > '9')
            return fail(x, "%s \"%s\" is not a decimal integer", col, s);
    ctx quiet = *x;
    quiet.err = NULL;
    if (parse_uint(&quiet, col, digits, limit, &mag) != 0)
        return fail(x, "%s %s is out of range (%lld .. %lld)", col, s, (long long)min,
                    (long long)max);
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (v < min)
        return fail(x, "%s %s is out of range (%lld .. %lld)", col, s, (long long)min, (long long)max);
    *out = v;
    return 0;
}

/* Index of the first character of s outside [A-Za-z0-9._-], or -1. */
static long bad_id_char(const char *s)
{
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return (long)(p - s);
    }
    return -1;
}

/* Phase group (voltage or current): none, A only, or A, B and C. Returns the count. */
static int phase_count(ctx *x, char **f, int first, int *count)
{
    int a = f[first][0] != 0, b = f[first + 1][0] != 0, c = f[first + 2][0] != 0;
    if (!a && !b && !c) {
        *count = 0;
    } else if (a && !b && !c) {
        *count = 1;
    } else if (a && b && c) {
        *count = 3;
    } else {
        return fail(x, "%s, %s, %s: give phase A only or all three phases (got %s%s%s)",
                    gl_csv_columns[first], gl_csv_columns[first + 1], gl_csv_columns[first + 2],
                    a ? "A" : "", b ? "B" : "", c ? "C" : "");
    }
    return 0;
}

static int parse_record(ctx *x, char **f, gl_csv_reading *r)
{
    uint64_t u;
    int64_t i;
    int nv, ni;

    memset(r, 0, sizeof *r);
    r->line = x->line;
    size_t idlen = strlen(f[COL_METER]);
    long bad = bad_id_char(f[COL_METER]);
    if (idlen == 0)
        return fail(x, "meter_id is empty");
    if (idlen > GL_CSV_METER_ID_MAX)
        return fail(x, "meter_id is longer than %d characters", GL_CSV_METER_ID_MAX);
    if (bad >= 0) {
        unsigned char ch = (unsigned char)f[COL_METER][bad];
        if (ch > 0x20 && ch < 0x7f)
            return fail(x, "meter_id \"%s\": character '%c' is not in [A-Za-z0-9._-]", f[COL_METER], ch);
        return fail(x, "meter_id: byte 0x%02x at position %ld is not in [A-Za-z0-9._-]", ch, bad + 1);
    }
    if (parse_int(x, "timestamp_ms", f[COL_TS], 1, GL_CSV_TIMESTAMP_MAX, &r->timestamp_ms) != 0)
        return GL_CSV_EDATA;
    uint64_t *energy[6] = {&r->energy_total, &r->energy_sharp, &r->energy_peak,
                           &r->energy_flat, &r->energy_valley, &r->energy_reverse};
    for (int k = 0; k < 6; k++)
        if (parse_uint(x, gl_csv_columns[COL_TOTAL + k], f[COL_TOTAL + k], UINT64_MAX, energy[k]) != 0)
            return GL_CSV_EDATA;
    if (phase_count(x, f, COL_VA, &nv) != 0 || phase_count(x, f, COL_IA, &ni) != 0)
        return GL_CSV_EDATA;
    for (int k = 0; k < nv; k++) {
        if (parse_uint(x, gl_csv_columns[COL_VA + k], f[COL_VA + k], UINT32_MAX, &u) != 0)
            return GL_CSV_EDATA;
        r->voltage_dv[k] = (uint32_t)u;
    }
    for (int k = 0; k < ni; k++) {
        if (parse_int(x, gl_csv_columns[COL_IA + k], f[COL_IA + k], INT32_MIN, INT32_MAX, &i) != 0)
            return GL_CSV_EDATA;
        r->current_ma[k] = (int32_t)i;
    }
    r->n_voltage = (size_t)nv;
    r->n_current = (size_t)ni;
    if (parse_int(x, "active_power_w", f[COL_P], INT64_MIN, INT64_MAX, &r->active_power_w) != 0 ||
        parse_int(x, "reactive_power_var", f[COL_Q], INT64_MIN, INT64_MAX, &r->reactive_power_var) != 0)
        return GL_CSV_EDATA;
    if (parse_uint(x, "events", f[COL_EVENTS], UINT32_MAX, &u) != 0)
        return GL_CSV_EDATA;
    if ((u & ~(uint64_t)GL_CSV_KNOWN_EVENTS) != 0)
        return fail(x, "events %llu has unknown bits 0x%llx (known: 1 power-down, 2 power-up, "
                       "4 cover-open, 8 magnetic-interference, 16 reverse-power, 32 current-loss)",
                    (unsigned long long)u, (unsigned long long)(u & ~(uint64_t)GL_CSV_KNOWN_EVENTS));
    r->events = (uint32_t)u;
    r->meter_id = strdup(f[COL_METER]);
    return r->meter_id != NULL ? 0 : GL_CSV_ENOMEM;
}

static int check_header(ctx *x, char **f, int n)
{
    if (n != GL_CSV_FIELDS)
        return fail(x, "header has %s%d fields, expected %d: %s,...,%s", n > GL_CSV_FIELDS ? "more than " : "",
                    n > GL_CSV_FIELDS ? GL_CSV_FIELDS : n, GL_CSV_FIELDS, gl_csv_columns[0],
                    gl_csv_columns[GL_CSV_FIELDS - 1]);
    for (int k = 0; k < GL_CSV_FIELDS; k++)
        if (strcmp(f[k], gl_csv_columns[k]) != 0)
            return fail(x, "header field %d is \"%s\", expected \"%s\"", k + 1, f[k], gl_csv_columns[k]);
    return 0;
}

void gl_csv_readings_free(gl_csv_readings *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->items[i].meter_id);
    free(r->items);
    r->items = NULL;
    r->count = r->cap = 0;
}

int gl_csv_read_readings(FILE *f, const char *name, gl_csv_readings *out, char *err,
                         size_t errlen)
{
    ctx x = {name != NULL ? name : "(input)", 0, err, errlen};
    gl_csv_readings r = {NULL, 0, 0};
    char *line = NULL;
    size_t linecap = 0;
    int have_header = 0;
    int rc = GL_CSV_OK;

    if (err != NULL && errlen > 0)
        err[0] = 0;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&line, &linecap, f);
        if (len < 0) {
            if (ferror(f)) {
                if (err != NULL && errlen > 0)
                    snprintf(err, errlen, "%s: read error after line %lu: %s", x.name, x.line,
                             strerror(errno != 0 ? errno : EIO));
                rc = errno == ENOMEM ? GL_CSV_ENOMEM : GL_CSV_EIO;
                goto end;
            }
            break;
        }
        x.line++;
        if ((size_t)len != strlen(line)) {
            rc = fail(&x, "NUL byte in line");
            goto end;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = 0;
        char *text = line;
        if (x.line == 1 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
            (unsigned char)text[2] == 0xbf)
            text += 3; /* UTF-8 BOM */
        char *q = text;
        while (is_blank(*q))
            q++;
        if (*q == 0)
            continue;
        char *fields[GL_CSV_FIELDS + 1];
        int n = 0;
        if ((rc = split(&x, text, fields, GL_CSV_FIELDS, &n)) != 0)
            goto end;
        if (!have_header) {
            if ((rc = check_header(&x, fields, n)) != 0)
                goto end;
            have_header = 1;
            continue;
        }
        if (n != GL_CSV_FIELDS) {
            rc = fail(&x, "%s%d fields, expected %d", n > GL_CSV_FIELDS ? "more than " : "",
                      n > GL_CSV_FIELDS ? GL_CSV_FIELDS : n, GL_CSV_FIELDS);
            goto end;
        }
        if (r.count == r.cap) {
            size_t cap = r.cap ? r.cap * 2 : 1024;
            gl_csv_reading *items = realloc(r.items, cap * sizeof *items);
            if (items == NULL) {
                rc = GL_CSV_ENOMEM;
                goto end;
            }
            r.items = items;
            r.cap = cap;
        }
        if ((rc = parse_record(&x, fields, &r.items[r.count])) != 0)
            goto end;
        r.count++;
    }
    if (!have_header) {
        x.line = x.line ? x.line : 1;
        rc = fail(&x, "no header row (expected %s,%s,...)", gl_csv_columns[0], gl_csv_columns[1]);
        goto end;
    }
    *out = r;
    r.items = NULL;
    r.count = r.cap = 0;
end:
    if (rc == GL_CSV_ENOMEM && err != NULL && errlen > 0 && err[0] == 0)
        snprintf(err, errlen, "%s:%lu: out of memory", x.name, x.line);
    free(line);
    gl_csv_readings_free(&r);
    return rc;
}

void gl_csv_reading_to_proto(const gl_csv_reading *r, Gridledger__Reading *out)
{
    gridledger__reading__init(out);
    out->meter_id = r->meter_id;
    out->timestamp_ms = r->timestamp_ms;
    out->energy_total = r->energy_total;
    out->energy_sharp = r->energy_sharp;
    out->energy_peak = r->energy_peak;
    out->energy_flat = r->energy_flat;
    out->energy_valley = r->energy_valley;
    out->energy_reverse = r->energy_reverse;
    out->n_voltage_dv = r->n_voltage;
    out->voltage_dv = r->n_voltage > 0 ? (uint32_t *)r->voltage_dv : NULL;
    out->n_current_ma = r->n_current;
    out->current_ma = r->n_current > 0 ? (int32_t *)r->current_ma : NULL;
    out->active_power_w = r->active_power_w;
    out->reactive_power_var = r->reactive_power_var;
    out->events = r->events;
}
