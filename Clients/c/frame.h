/*
 * frame.h - GridLedger wire protocol v1 frames (Docs/wire-protocol.md, "Frames").
 *
 *   frame      = header body
 *   header     = length type flags stream-id          ; 10 bytes, big-endian
 *   length     = uint32                               ; body length, header excluded
 *   type       = uint8                                ; 1 HEADERS .. 7 END
 *   flags      = uint8                                ; bit 0 = END_STREAM / ACK
 *   stream-id  = uint32                               ; 0 for PING and GOAWAY
 *   body       = length bytes
 *
 * This file knows nothing of sockets or TLS: the encoder writes into caller memory and
 * the parser is fed whatever bytes arrived (one at a time is fine), so both are tested
 * without a network (tests/test_frames.c).
 *
 * Thread safety: a gl_frame_parser is used by one thread at a time; the functions keep
 * no global state.
 */
#ifndef GRIDLEDGER_FRAME_H
#define GRIDLEDGER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GL_FRAME_HEADER_LEN 10u

enum {
    GL_FRAME_HEADERS = 1,
    GL_FRAME_MESSAGE = 2,
    GL_FRAME_TRAILERS = 3,
    GL_FRAME_CANCEL = 4,
    GL_FRAME_PING = 5,
    GL_FRAME_GOAWAY = 6,
    GL_FRAME_END = 7, /* client -> server: half-close without a message (empty body) */
};

#define GL_FLAG_END_STREAM 0x01u /* HEADERS, MESSAGE */
#define GL_FLAG_ACK 0x01u        /* PING */

/* Body limits of the control frames (fixed by the protocol). */
#define GL_MAX_HEADERS_BYTES 16384u
#define GL_MAX_TRAILERS_BYTES 16384u
#define GL_MAX_GOAWAY_BYTES 4096u
#define GL_PING_BYTES 8u
/* Default max-message-bytes (a per-endpoint setting). */
#define GL_DEFAULT_MAX_MESSAGE_BYTES (4u * 1024u * 1024u)

typedef struct gl_frame_header {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
} gl_frame_header;

/* Writes the 10 header bytes of `h` to `out`. */
void gl_frame_header_encode(const gl_frame_header *h, uint8_t out[GL_FRAME_HEADER_LEN]);

/* Reads 10 header bytes. No validation: see gl_frame_header_check. */
void gl_frame_header_decode(const uint8_t in[GL_FRAME_HEADER_LEN], gl_frame_header *h);

/* Result of checking a decoded header against the protocol's rules. */
typedef enum gl_frame_verdict {
    GL_FRAME_OK = 0,       /* read the body */
    GL_FRAME_TOO_LARGE = 1, /* a MESSAGE above max-message-bytes: discard its body, fail the call */
    GL_FRAME_INVALID = -1, /* connection error; `err` says why */
} gl_frame_verdict;

/*
 * Checks a header: known type, stream frames on a stream id != 0, connection frames on
 * stream 0, PING body exactly 8 bytes, CANCEL and END bodies empty, control-frame size
 * limits. (Direction is not checked here: a client receiving HEADERS, CANCEL or END is a
 * protocol error that the caller detects.)
 * `max_message_bytes` is the MESSAGE limit. `err` (may be NULL) receives a reason on
 * GL_FRAME_INVALID.
 */
gl_frame_verdict gl_frame_header_check(const gl_frame_header *h, uint32_t max_message_bytes,
                                       char *err, size_t errlen);

/* "HEADERS", "MESSAGE", ... or "UNKNOWN". */
const char *gl_frame_type_name(uint8_t type);

/*
 * Encodes a whole frame (header then body) into `out`, which must hold
 * GL_FRAME_HEADER_LEN + body_len bytes. Returns the number of bytes written.
 */
size_t gl_frame_encode(uint8_t type, uint8_t flags, uint32_t stream_id, const uint8_t *body,
                       uint32_t body_len, uint8_t *out);

/* ---- Incremental parser ---------------------------------------------------------------- */

typedef enum gl_parse_result {
    GL_PARSE_NEED_MORE = 0, /* all input consumed, no complete frame yet */
    GL_PARSE_FRAME = 1,     /* a complete frame: header + body */
    GL_PARSE_SKIPPED = 2,   /* an oversized MESSAGE whose body has been discarded; header valid */
    GL_PARSE_ERROR = -1,    /* connection error; parser->error says why; sticky */
} gl_parse_result;

typedef struct gl_frame {
    gl_frame_header header;
    /* Body bytes (header.length of them). Owned by the parser, valid until the next
     * gl_frame_parser_feed or gl_frame_parser_free. NULL for SKIPPED frames. */
    const uint8_t *body;
} gl_frame;

typedef struct gl_frame_parser {
    int state; /* private: 0 header, 1 body, 2 skip, 3 error */
    uint8_t hdr[GL_FRAME_HEADER_LEN];
    size_t hdr_have;
    gl_frame_header cur;
    uint8_t *body;
    size_t body_cap;
    size_t body_have;
    uint32_t skip_left;
    uint32_t max_message_bytes;
    char error[160];
} gl_frame_parser;

/* Initializes a parser; max_message_bytes 0 means GL_DEFAULT_MAX_MESSAGE_BYTES. */
void gl_frame_parser_init(gl_frame_parser *p, uint32_t max_message_bytes);

/* Releases the body buffer. The parser may be re-initialized afterwards. */
void gl_frame_parser_free(gl_frame_parser *p);

/*
 * Feeds up to `len` bytes. Stops after the first complete (or skipped) frame, so the
 * caller loops while bytes remain. `*consumed` receives the number of bytes used.
 * Memory: a body buffer grows to the largest accepted frame (at most max-message-bytes);
 * an oversized MESSAGE is never buffered.
 */
gl_parse_result gl_frame_parser_feed(gl_frame_parser *p, const uint8_t *data, size_t len,
                                     size_t *consumed, gl_frame *out);

/* 1 when the parser sits between frames (no partial header/body buffered), else 0.
 * A stream that ends while this is 0 was truncated. */
int gl_frame_parser_at_boundary(const gl_frame_parser *p);

#endif /* GRIDLEDGER_FRAME_H */
