/*
 * frame.c - encoder and incremental parser of GridLedger v1 frames. Grammar in frame.h
 * and Docs/wire-protocol.md.
 */
#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_HEADER = 0, ST_BODY = 1, ST_SKIP = 2, ST_ERROR = 3 };

static const uint8_t empty_body[1] = {0};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void gl_frame_header_encode(const gl_frame_header *h, uint8_t out[GL_FRAME_HEADER_LEN])
{
    put_u32(out, h->length);
    out[4] = h->type;
    out[5] = h->flags;
    put_u32(out + 6, h->stream_id);
}

void gl_frame_header_decode(const uint8_t in[GL_FRAME_HEADER_LEN], gl_frame_header *h)
{
    h->length = get_u32(in);
    h->type = in[4];
    h->flags = in[5];
    h->stream_id = get_u32(in + 6);
}

size_t gl_frame_encode(uint8_t type, uint8_t flags, uint32_t stream_id, const uint8_t *body,
                       uint32_t body_len, uint8_t *out)
{
    gl_frame_header h = {body_len, type, flags, stream_id};
    gl_frame_header_encode(&h, out);
    if (body_len > 0)
        memcpy(out + GL_FRAME_HEADER_LEN, body, body_len);
    return GL_FRAME_HEADER_LEN + (size_t)body_len;
}

const char *gl_frame_type_name(uint8_t type)
{
    switch (type) {
    case GL_FRAME_HEADERS: return "HEADERS";
    case GL_FRAME_MESSAGE: return "MESSAGE";
    case GL_FRAME_TRAILERS: return "TRAILERS";
    case GL_FRAME_CANCEL: return "CANCEL";
    case GL_FRAME_PING: return "PING";
    case GL_FRAME_GOAWAY: return "GOAWAY";
    case GL_FRAME_END: return "END";
    default: return "UNKNOWN";
    }
}

#define INVALID(...)                                                                       \
    do {                                                                                   \
        if (err != NULL && errlen > 0)                                                     \
            snprintf(err, errlen, __VA_ARGS__);                                            \
        return GL_FRAME_INVALID;                                                           \
    } while (0)

gl_frame_verdict gl_frame_header_check(const gl_frame_header *h, uint32_t max_message_bytes,
                                       char *err, size_t errlen)
{
    const char *name = gl_frame_type_name(h->type);
    unsigned long len = h->length, sid = h->stream_id;

    switch (h->type) {
    case GL_FRAME_HEADERS:
    case GL_FRAME_MESSAGE:
    case GL_FRAME_TRAILERS:
    case GL_FRAME_CANCEL:
    case GL_FRAME_END:
        if (sid == 0)
            INVALID("%s frame on stream 0", name);
        break;
    case GL_FRAME_PING:
    case GL_FRAME_GOAWAY:
        if (sid != 0)
            INVALID("%s frame on stream %lu (must be 0)", name, sid);
        break;
    default:
        INVALID("unknown frame type %u (%lu bytes, stream %lu)", (unsigned)h->type, len, sid);
    }
    switch (h->type) {
    case GL_FRAME_HEADERS:
        if (len > GL_MAX_HEADERS_BYTES)
            INVALID("HEADERS frame of %lu bytes exceeds %u", len, GL_MAX_HEADERS_BYTES);
        break;
    case GL_FRAME_TRAILERS:
        if (len > GL_MAX_TRAILERS_BYTES)
            INVALID("TRAILERS frame of %lu bytes exceeds %u", len, GL_MAX_TRAILERS_BYTES);
        break;
    case GL_FRAME_GOAWAY:
        if (len > GL_MAX_GOAWAY_BYTES)
            INVALID("GOAWAY frame of %lu bytes exceeds %u", len, GL_MAX_GOAWAY_BYTES);
        break;
    case GL_FRAME_CANCEL:
    case GL_FRAME_END:
        if (len != 0)
            INVALID("%s frame with a %lu-byte body (must be empty)", name, len);
        break;
    case GL_FRAME_PING:
        if (len != GL_PING_BYTES)
            INVALID("PING frame with a %lu-byte body (must be %u)", len, GL_PING_BYTES);
        break;
    case GL_FRAME_MESSAGE:
        if (len > max_message_bytes)
            return GL_FRAME_TOO_LARGE;
        break;
    default:
        break;
    }
    return GL_FRAME_OK;
}

#undef INVALID

void gl_frame_parser_init(gl_frame_parser *p, uint32_t max_message_bytes)
{
    memset(p, 0, sizeof *p);
    p->state = ST_HEADER;
    p->max_message_bytes = max_message_bytes != 0 ? max_message_bytes : GL_DEFAULT_MAX_MESSAGE_BYTES;
}

void gl_frame_parser_free(gl_frame_parser *p)
{
    free(p->body);
    p->body = NULL;
    p->body_cap = 0;
}

int gl_frame_parser_at_boundary(const gl_frame_parser *p)
{
    return p->state == ST_HEADER && p->hdr_have == 0;
}

gl_parse_result gl_frame_parser_feed(gl_frame_parser *p, const uint8_t *data, size_t len,
                                     size_t *consumed, gl_frame *out)
{
    size_t used = 0;
    gl_parse_result result = GL_PARSE_NEED_MORE;

    while (result == GL_PARSE_NEED_MORE) {
        if (p->state == ST_ERROR) {
            result = GL_PARSE_ERROR;
            break;
        }
        if (p->state == ST_HEADER) {
            size_t n = GL_FRAME_HEADER_LEN - p->hdr_have;
            if (n > len - used)
                n = len - used;
            memcpy(p->hdr + p->hdr_have, data + used, n);
            p->hdr_have += n;
            used += n;
            if (p->hdr_have < GL_FRAME_HEADER_LEN)
                break; /* need more */
            p->hdr_have = 0;
            gl_frame_header_decode(p->hdr, &p->cur);
            gl_frame_verdict v = gl_frame_header_check(&p->cur, p->max_message_bytes, p->error,
                                                       sizeof p->error);
            if (v == GL_FRAME_INVALID) {
                p->state = ST_ERROR;
                continue;
            }
            if (v == GL_FRAME_TOO_LARGE) {
                p->skip_left = p->cur.length;
                p->state = ST_SKIP;
                continue;
            }
            if (p->cur.length > p->body_cap) {
                uint8_t *nb = realloc(p->body, p->cur.length);
                if (nb == NULL) {
                    snprintf(p->error, sizeof p->error, "out of memory for a %lu-byte %s frame",
                             (unsigned long)p->cur.length, gl_frame_type_name(p->cur.type));
                    p->state = ST_ERROR;
                    continue;
                }
                p->body = nb;
                p->body_cap = p->cur.length;
            }
            p->body_have = 0;
            p->state = ST_BODY;
            /* fall through to ST_BODY below: a zero-length body completes at once */
        }
        if (p->state == ST_BODY) {
            size_t n = p->cur.length - p->body_have;
            if (n > len - used)
                n = len - used;
            if (n > 0)
                memcpy(p->body + p->body_have, data + used, n);
            p->body_have += n;
            used += n;
            if (p->body_have < p->cur.length)
                break;
            p->state = ST_HEADER;
            out->header = p->cur;
            out->body = p->cur.length > 0 ? p->body : empty_body;
            result = GL_PARSE_FRAME;
            break;
        }
        if (p->state == ST_SKIP) {
            size_t n = p->skip_left;
            if (n > len - used)
                n = len - used;
            p->skip_left -= (uint32_t)n;
            used += n;
            if (p->skip_left > 0)
                break;
            p->state = ST_HEADER;
            out->header = p->cur;
            out->body = NULL;
            result = GL_PARSE_SKIPPED;
            break;
        }
    }
    *consumed = used;
    return result;
}
