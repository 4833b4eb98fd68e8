/*
 * params.c - VEE parameter bounds, notice templates, yuan (params.h).
 */
#include "params.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const gl_vee_limit gl_vee_limits[GL_VEE_N] = {
    [GL_VEE_SUM_TOLERANCE] = {"sum_tolerance", "sum-tolerance", 1, 10000, "0.01 kWh", "2",
                              NULL},
    [GL_VEE_SPIKE_FACTOR] = {"spike_factor", "spike-factor", 2, 1000,
                             "times the trailing average interval", "5",
                             "a factor of 1 would hold every reading above the average"},
    [GL_VEE_FUTURE_TOLERANCE_MS] = {"future_tolerance_ms", "future-tolerance-ms", 1, 86400000, "ms",
                                    "300000",
                                    "more than a day would let a wrong meter clock through"},
    [GL_VEE_MAX_INTERPOLATION_MS] = {"max_interpolation_ms", "max-interpolation-ms", 1, 604800000,
                                     "ms", "7200000",
                                     "longer gaps are estimated from the weekday profile"},
    [GL_VEE_SPIKE_MIN_HISTORY] = {"spike_min_history", "spike-min-history", 1, 11520, "intervals",
                                  "4",
                                  "the 8-day trailing window holds no more intervals, even at "
                                  "1-minute readings"},
};

static void set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

int gl_vee_parse(int which, const char *text, uint64_t *out, char *err, size_t errlen)
{
    const gl_vee_limit *l = &gl_vee_limits[which];
    const char *p = text != NULL ? text : "";
    int negative = *p == '-';
    char *endp = NULL;

    if (negative)
        p++;
    if (*p < '0' || *p > '9') {
        set_err(err, errlen, "--%s %s is not a whole number", l->option, text);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(p, &endp, 10);
    if (*endp != 0) {
        set_err(err, errlen, "--%s %s is not a whole number", l->option, text);
        return -1;
    }
    if (negative && v != 0) {
        set_err(err, errlen, "%s must not be negative (%s); 0 means the default (%s)", l->name,
                text, l->def);
        return -1;
    }
    if (v != 0 && (errno != 0 || v < l->low || v > l->high)) {
        set_err(err, errlen, "%s %s is out of range: %llu..%llu %s, or 0 for the default (%s)%s%s",
                l->name, p, (unsigned long long)l->low, (unsigned long long)l->high, l->unit,
                l->def, l->why != NULL ? "; " : "", l->why != NULL ? l->why : "");
        return -1;
    }
    *out = v;
    return 0;
}

void gl_vee_set(Gridledger__VeeParameters *v, int which, uint64_t value)
{
    switch (which) {
    case GL_VEE_SUM_TOLERANCE: v->sum_tolerance = value; break;
    case GL_VEE_SPIKE_FACTOR: v->spike_factor = (uint32_t)value; break;
    case GL_VEE_FUTURE_TOLERANCE_MS: v->future_tolerance_ms = (int64_t)value; break;
    case GL_VEE_MAX_INTERPOLATION_MS: v->max_interpolation_ms = (int64_t)value; break;
    case GL_VEE_SPIKE_MIN_HISTORY: v->spike_min_history = (uint32_t)value; break;
    default: break;
    }
}

/* ---- notice templates ---------------------------------------------------------------- */

static const struct {
    const char *name;
    Gridledger__NoticeKind kind;
    int customer, grid_worker; /* who receives it */
} kinds[] = {
    {"warning1", GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_WARNING1, 1, 0},
    {"warning2", GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_WARNING2, 1, 0},
    {"disconnect", GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_DISCONNECT, 1, 0},
    {"formal_disconnect", GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_FORMAL_DISCONNECT, 0, 1},
    {"reconnect", GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_RECONNECT, 1, 1},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const char *const placeholders[] = {"account", "meter", "balance", "state"};

/* `in` trimmed of spaces, lower-cased, '-' as '_', into out (at most n-1 bytes). */
static void canonical(const char *in, size_t len, char *out, size_t n)
{
    while (len > 0 && isspace((unsigned char)*in)) {
        in++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)in[len - 1]))
        len--;
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++)
        out[k++] = in[i] == '-' ? '_' : (char)tolower((unsigned char)in[i]);
    out[k] = 0;
}

static int kind_index(const char *name, size_t len)
{
    char c[48];
    canonical(name, len, c, sizeof c);
    const char *k = strncmp(c, "notice_kind_", 12) == 0 ? c + 12 : c;
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(k, kinds[i].name) == 0)
            return (int)i;
    return -1;
}

Gridledger__NoticeKind gl_notice_kind_from_name(const char *name)
{
    int i = kind_index(name, strlen(name));
    return i < 0 ? GRIDLEDGER__NOTICE_KIND__NOTICE_KIND_UNSPECIFIED : kinds[i].kind;
}

/* Code points of valid UTF-8 `s`, or -1 when it is not UTF-8. */
static long utf8_length(const unsigned char *s)
{
    long n = 0;
    while (*s) {
        int more;
        unsigned long cp;
        if (*s < 0x80) { more = 0; cp = *s; }
        else if (*s >= 0xc2 && *s <= 0xdf) { more = 1; cp = *s & 0x1f; }
        else if (*s >= 0xe0 && *s <= 0xef) { more = 2; cp = *s & 0x0f; }
        else if (*s >= 0xf0 && *s <= 0xf4) { more = 3; cp = *s & 0x07; }
        else return -1;
        for (int i = 1; i <= more; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return -1;
        s += more + 1;
        n++;
    }
    return n;
}

/* Placeholders and braces of `text`. 0, or -1 with err. */
static int check_text(const char *text, const char *kind, const char *recipient, char *err,
                      size_t errlen)
{
    const char *p = text;
    int blank = 1;
    for (const char *q = text; *q; q++)
        if (!isspace((unsigned char)*q))
            blank = 0;
    if (blank) {
        set_err(err, errlen, "the %s text for the %s is empty", kind, recipient);
        return -1;
    }
    long len = utf8_length((const unsigned char *)text);
    if (len < 0) {
        set_err(err, errlen, "the %s text for the %s is not UTF-8", kind, recipient);
        return -1;
    }
    if (len > GL_NOTICE_TEXT_MAX) {
        set_err(err, errlen, "the %s text for the %s has %ld characters, more than %d", kind,
                recipient, len, GL_NOTICE_TEXT_MAX);
        return -1;
    }
    while ((p = strpbrk(p, "{}")) != NULL) {
        const char *close = *p == '{' ? strpbrk(p + 1, "{}") : NULL;
        if (close == NULL || *close != '}') {
            set_err(err, errlen, "unmatched brace in the %s text for the %s: placeholders are "
                    "written {account}", kind, recipient);
            return -1;
        }
        size_t n = (size_t)(close - p - 1);
        int known = 0;
        for (size_t i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++)
            if (strlen(placeholders[i]) == n && strncmp(p + 1, placeholders[i], n) == 0)
                known = 1;
        if (!known) {
            set_err(err, errlen, "unknown placeholder %.*s in the %s text for the %s (known: "
                    "{account}, {meter}, {balance}, {state})", (int)(n + 2 > 80 ? 80 : n + 2), p,
                    kind, recipient);
            return -1;
        }
        p = close + 1;
    }
    return 0;
}

int gl_notice_set_init(gl_notice_set *s, const char *language, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (language == NULL || (strcmp(language, "zh-CN") != 0 && strcmp(language, "en") != 0)) {
        set_err(err, errlen, "language must be zh-CN or en, not \"%s\"",
                language != NULL ? language : "");
        return -1;
    }
    gridledger__notice_templates__init(&s->msg);
    snprintf(s->language, sizeof s->language, "%s", language);
    s->msg.language = s->language;
    s->msg.templates = s->ptrs;
    return 0;
}

int gl_notice_set_add(gl_notice_set *s, const char *spec, char *err, size_t errlen)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    char recipient[48];
    if (c2 == NULL) {
        set_err(err, errlen, "\"%.80s\" is not KIND:RECIPIENT:TEXT", spec);
        return -1;
    }
    int k = kind_index(spec, (size_t)(c1 - spec));
    if (k < 0) {
        set_err(err, errlen, "unknown notice kind \"%.*s\" (known: warning1, warning2, disconnect, "
                "formal_disconnect, reconnect)", (int)(c1 - spec > 40 ? 40 : c1 - spec), spec);
        return -1;
    }
    canonical(c1 + 1, (size_t)(c2 - c1 - 1), recipient, sizeof recipient);
    int to_customer = strcmp(recipient, "customer") == 0;
    if (!to_customer && strcmp(recipient, "grid_worker") != 0) {
        set_err(err, errlen, "unknown recipient \"%.*s\" (customer or grid_worker)",
                (int)(c2 - c1 - 1 > 40 ? 40 : c2 - c1 - 1), c1 + 1);
        return -1;
    }
    if (!(to_customer ? kinds[k].customer : kinds[k].grid_worker)) {
        set_err(err, errlen, "no %s notice goes to the %s (it goes to the %s)", kinds[k].name,
                recipient, kinds[k].customer ? "customer" : "grid_worker");
        return -1;
    }
    const char *text = c2 + 1;
    if (check_text(text, kinds[k].name, recipient, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].msg.kind == kinds[k].kind && strcmp(s->items[i].recipient, recipient) == 0) {
            set_err(err, errlen, "two templates for %s to the %s", kinds[k].name, recipient);
            return -1;
        }
    if (s->n == GL_NOTICE_MAX) {
        set_err(err, errlen, "more than %d templates", GL_NOTICE_MAX);
        return -1;
    }
    gl_notice_template *t = &s->items[s->n];
    t->text = strdup(text);
    if (t->text == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    gridledger__notice_template__init(&t->msg);
    snprintf(t->recipient, sizeof t->recipient, "%s", recipient);
    t->msg.kind = kinds[k].kind;
    t->msg.recipient = t->recipient;
    t->msg.text = t->text;
    s->ptrs[s->n++] = &t->msg;
    s->msg.n_templates = s->n;
    return 0;
}

int gl_notice_set_read(gl_notice_set *s, FILE *f, const char *name, char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    char why[400];

    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = 0;
        char *p = line;
        if (lineno == 1 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
            (unsigned char)p[2] == 0xbf)
            p += 3; /* UTF-8 byte order mark */
        if ((size_t)got != strlen(line)) {
            set_err(err, errlen, "%s:%ld: a NUL byte in the line", name, lineno);
            rc = -1;
            break;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        if (gl_notice_set_add(s, p, why, sizeof why) != 0) {
            set_err(err, errlen, "%s:%ld: %s", name, lineno, why);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        set_err(err, errlen, "%s: read error: %s", name, strerror(errno));
        rc = -2;
    }
    free(line);
    return rc;
}

void gl_notice_set_free(gl_notice_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].text);
    s->n = 0;
    s->msg.n_templates = 0;
}

const char *gl_yuan(int64_t fen, char buf[32])
{
    uint64_t mag = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    snprintf(buf, 32, "%s%llu.%02llu", fen < 0 ? "-" : "", (unsigned long long)(mag / 100),
             (unsigned long long)(mag % 100));
    return buf;
}
