/*
 * gridctl's JSON output: a small writer (compact or pretty), any decoded protobuf message
 * as JSON, and flushing stdout.
 */
#include "gridctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Writes a JSON string: escapes quotes, backslashes and control characters; replaces bytes
 * that are not valid UTF-8 with U+FFFD. */
static void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    fputc('"', f);
    while (*p) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            p++;
        } else if (ch < 0x20 || ch == 0x7f) {
            switch (ch) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            default: fprintf(f, "\\u%04x", ch); break;
            }
            p++;
        } else if (ch < 0x80) {
            fputc(ch, f);
            p++;
        } else {
            /* UTF-8 sequence: lead byte, continuation count, minimum code point. */
            int n;
            unsigned long cp;
            if (ch >= 0xc2 && ch <= 0xdf) { n = 1; cp = ch & 0x1f; }
            else if (ch >= 0xe0 && ch <= 0xef) { n = 2; cp = ch & 0x0f; }
            else if (ch >= 0xf0 && ch <= 0xf4) { n = 3; cp = ch & 0x07; }
            else { n = -1; cp = 0; }
            int ok = n > 0;
            for (int i = 1; ok && i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                    ok = 0;
                else
                    cp = (cp << 6) | (p[i] & 0x3f);
            }
            if (ok && ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                       (n == 3 && (cp < 0x10000 || cp > 0x10ffff))))
                ok = 0;
            if (ok) {
                fwrite(p, 1, (size_t)n + 1, f);
                p += n + 1;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

void jw_init(jw *w, FILE *f, int pretty)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->pretty = pretty;
}

static void jw_newline(jw *w, int level)
{
    fputc('\n', w->f);
    for (int i = 0; i < level; i++)
        fputs("  ", w->f);
}

/* Separator and layout before a value or a key. */
static void jw_prefix(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0)
        return;
    if (!w->first[w->depth])
        fputc(',', w->f);
    if (w->pretty)
        jw_newline(w, w->depth);
    else if (!w->first[w->depth])
        fputc(' ', w->f);
    w->first[w->depth] = 0;
}

void jw_open(jw *w, char ch)
{
    jw_prefix(w);
    fputc(ch, w->f);
    if (w->depth < JW_MAX_DEPTH)
        w->depth++;
    w->first[w->depth] = 1;
}

void jw_close(jw *w, char ch)
{
    if (w->pretty && !w->first[w->depth])
        jw_newline(w, w->depth - 1);
    if (w->depth > 0)
        w->depth--;
    fputc(ch, w->f);
    if (w->depth == 0)
        fputc('\n', w->f);
}

void jw_key(jw *w, const char *k)
{
    jw_prefix(w);
    json_string(w->f, k);
    fputs(": ", w->f);
    w->after_key = 1;
}

void jw_str(jw *w, const char *s) { jw_prefix(w); json_string(w->f, s); }
void jw_u64(jw *w, unsigned long long v) { jw_prefix(w); fprintf(w->f, "%llu", v); }
void jw_i64(jw *w, long long v) { jw_prefix(w); fprintf(w->f, "%lld", v); }
static void jw_bool(jw *w, int v) { jw_prefix(w); fputs(v ? "true" : "false", w->f); }
void jw_null(jw *w) { jw_prefix(w); fputs("null", w->f); }

void jw_u64_array(jw *w, const uint64_t *v, size_t n)
{
    jw_open(w, '[');
    for (size_t i = 0; i < n; i++)
        jw_u64(w, v[i]);
    jw_close(w, ']');
}

void jw_double(jw *w, double v)
{
    jw_prefix(w);
    if (v != v || v > 1e308 || v < -1e308)
        fputs("null", w->f); /* NaN and infinities have no JSON form */
    else
        fprintf(w->f, "%.6g", v);
}

void jw_hex(jw *w, const uint8_t *b, size_t len)
{
    jw_prefix(w);
    fputc('"', w->f);
    for (size_t i = 0; i < len; i++)
        fprintf(w->f, "%02x", b[i]);
    fputc('"', w->f);
}

void jw_kstr(jw *w, const char *k, const char *v) { jw_key(w, k); jw_str(w, v); }
void jw_ku64(jw *w, const char *k, unsigned long long v) { jw_key(w, k); jw_u64(w, v); }
void jw_ki64(jw *w, const char *k, long long v) { jw_key(w, k); jw_i64(w, v); }
void jw_kbool(jw *w, const char *k, int v) { jw_key(w, k); jw_bool(w, v); }
void jw_kbytes(jw *w, const char *k, ProtobufCBinaryData b) { jw_key(w, k); jw_hex(w, b.data, b.len); }

/* Flushes stdout; 0, or EXIT_IO after saying why. */
int flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "error: writing to stdout failed: %s\n", strerror(errno));
        return EXIT_IO;
    }
    return 0;
}

/* One value of field `f` at `p` (a scalar, string, bytes, enum or message). */
static void jw_field_value(jw *w, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        jw_i64(w, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        jw_u64(w, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        jw_i64(w, (long long)*(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        jw_u64(w, (unsigned long long)*(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_FLOAT: jw_double(w, *(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: jw_double(w, *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: jw_bool(w, *(const protobuf_c_boolean *)p); break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *e =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (e != NULL)
            jw_str(w, e->name);
        else
            jw_i64(w, *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: jw_str(w, *(char *const *)p); break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        jw_hex(w, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub != NULL)
            jw_message(w, sub);
        else
            jw_null(w);
        break;
    }
    }
}

/* Size of one element of a repeated field of type t. */
static size_t field_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    default: return 4;
    }
}

/*
 * Any decoded message as JSON, like the Python client's render.to_jsonable: proto field
 * names, every proto3 field (defaults included), enums by name, bytes as hex, a oneof only
 * when set, an absent message as null.
 */
void jw_message(jw *w, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    jw_open(w, '{');
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        }
        jw_key(w, f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)p;
            jw_open(w, '[');
            for (size_t k = 0; k < n; k++)
                jw_field_value(w, f, arr + k * field_size(f->type));
            jw_close(w, ']');
        } else {
            jw_field_value(w, f, p);
        }
    }
    jw_close(w, '}');
}
