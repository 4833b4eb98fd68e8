/*
 * params.h - checks and builders of the main-chain parameters added by issue 10 (part of
 * libgridledger; Proto/gridledger/contracts.proto): the VEE parameters of a contract
 * activation, notice templates, and fen as yuan for people. The Python client
 * (gridledger/parameters.py) applies the same rules with the same messages.
 *
 * Notice template file (`gridctl param notice-templates --file`), UTF-8:
 *
 *   file     = *( line LF )                 ; CRLF accepted
 *   line     = blank / "#" *CHAR / template
 *   template = KIND ":" RECIPIENT ":" TEXT    ; TEXT runs to the end of the line and may
 *                                             ; hold ':'; the same as --template
 *   KIND      = "warning1" / "warning2" / "disconnect" / "formal_disconnect" / "reconnect"
 *   RECIPIENT = "customer" / "grid_worker"    ; '-' accepted for '_', any case
 *
 * TEXT placeholders: {account} {meter} {balance} (yuan) {state}; any other {...} or a
 * lone brace is an error. Who gets which kind (DOMAIN.md "Prepaid fee control"): warning1,
 * warning2, disconnect -> customer; formal_disconnect -> grid_worker; reconnect -> both.
 *
 * Thread safety: none needed; no global state.
 */
#ifndef GRIDLEDGER_PARAMS_H
#define GRIDLEDGER_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gridledger/contracts.pb-c.h"

/* The VEE values of an activation (0 = the default of each), by index. */
enum { GL_VEE_SUM_TOLERANCE, GL_VEE_SPIKE_FACTOR, GL_VEE_FUTURE_TOLERANCE_MS,
       GL_VEE_MAX_INTERPOLATION_MS, GL_VEE_SPIKE_MIN_HISTORY, GL_VEE_N };

typedef struct gl_vee_limit {
    const char *name;     /* "spike_factor" */
    const char *option;   /* "spike-factor" */
    uint64_t low, high;   /* allowed besides 0 */
    const char *unit;
    const char *def;      /* the node's default, as text */
    const char *why;      /* why the bound (or NULL) */
} gl_vee_limit;

extern const gl_vee_limit gl_vee_limits[GL_VEE_N];

/*
 * Parses `text` (decimal digits, optionally a leading '-' which is then refused) as VEE
 * value `which`: 0, or gl_vee_limits[which].low .. high. Returns 0 with *out, or -1 with a
 * sentence in err ("spike_factor 1 is out of range: 2..1000 ...").
 */
int gl_vee_parse(int which, const char *text, uint64_t *out, char *err, size_t errlen);

/* Sets the field `which` of *v (initialised by the caller) to `value`. */
void gl_vee_set(Gridledger__VeeParameters *v, int which, uint64_t value);

#define GL_NOTICE_TEXT_MAX 500  /* characters (UTF-8 code points) */
#define GL_NOTICE_MAX 16        /* templates of one NoticeTemplates */

/* A checked template; `msg` points into the struct (do not copy; never free msg). */
typedef struct gl_notice_template {
    Gridledger__NoticeTemplate msg;
    char recipient[48];
    char *text;  /* malloc'd */
} gl_notice_template;

/* Templates in a language; `msg` points into the struct. Free with gl_notice_set_free. */
typedef struct gl_notice_set {
    Gridledger__NoticeTemplates msg;
    char language[8];
    gl_notice_template items[GL_NOTICE_MAX];
    Gridledger__NoticeTemplate *ptrs[GL_NOTICE_MAX];
    size_t n;
} gl_notice_set;

/* Starts an empty set in `language` ("zh-CN" or "en"). 0, or -1 with err. */
int gl_notice_set_init(gl_notice_set *s, const char *language, char *err, size_t errlen);

/*
 * Checks `spec` (KIND:RECIPIENT:TEXT) and appends it: kind and recipient names, who gets
 * the kind, placeholders, braces, UTF-8, length, one template per kind and recipient.
 * 0, or -1 with err (nothing appended).
 */
int gl_notice_set_add(gl_notice_set *s, const char *spec, char *err, size_t errlen);

/* Appends every template of file `f` (grammar above); errors are "name:line: reason".
 * 0, -1 bad content, -2 read error. */
int gl_notice_set_read(gl_notice_set *s, FILE *f, const char *name, char *err, size_t errlen);

void gl_notice_set_free(gl_notice_set *s);

/* The kind of a notice name ("warning1", "formal-disconnect", "NOTICE_KIND_RECONNECT",
 * any case); NOTICE_KIND_UNSPECIFIED when none. */
Gridledger__NoticeKind gl_notice_kind_from_name(const char *name);

/* fen as yuan with two decimals, no rounding: -1234 -> "-12.34". buf holds 32 bytes. */
const char *gl_yuan(int64_t fen, char buf[32]);

#endif /* GRIDLEDGER_PARAMS_H */
