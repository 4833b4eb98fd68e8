/*
 * test_frames.c - frame encoder and parser without sockets (STYLE habit 15: decoders are
 * drip-fed byte by byte). Each test names the rule of Docs/wire-protocol.md it checks.
 * Prints "N passed, N failed" last; exits 1 when anything failed.
 */
#include "frame.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rule: header = length(u32 BE) type(u8) flags(u8) stream-id(u32 BE), 10 bytes. */
static void test_header_layout(void)
{
    gl_frame_header h = {0x01020304u, GL_FRAME_MESSAGE, GL_FLAG_END_STREAM, 0x0a0b0c0du};
    uint8_t b[GL_FRAME_HEADER_LEN];
    static const uint8_t want[GL_FRAME_HEADER_LEN] = {1, 2, 3, 4, 2, 1, 0x0a, 0x0b, 0x0c, 0x0d};
    gl_frame_header_encode(&h, b);
    CHECK(memcmp(b, want, sizeof want) == 0);
}

/* Rule: all integers are big-endian; encode/decode round-trips every field. */
static void test_header_round_trip(void)
{
    static const gl_frame_header cases[] = {
        {0, GL_FRAME_HEADERS, 0, 1},
        {8, GL_FRAME_PING, GL_FLAG_ACK, 0},
        {0xffffffffu, 0xff, 0xff, 0xffffffffu},
        {4u * 1024u * 1024u, GL_FRAME_MESSAGE, GL_FLAG_END_STREAM, 0x7fffffffu},
        {123, GL_FRAME_GOAWAY, 0x80, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[GL_FRAME_HEADER_LEN];
        gl_frame_header d;
        gl_frame_header_encode(&cases[i], b);
        gl_frame_header_decode(b, &d);
        CHECK(d.length == cases[i].length);
        CHECK(d.type == cases[i].type);
        CHECK(d.flags == cases[i].flags);
        CHECK(d.stream_id == cases[i].stream_id);
    }
}

/* A stream of frames, used by the parser tests. */
static size_t build_stream(uint8_t *out)
{
    static const uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t msg[5] = {0x0a, 0x03, 'a', 'b', 'c'};
    static const uint8_t trailers[2] = {0x08, 0x00};
    size_t n = 0;
    n += gl_frame_encode(GL_FRAME_PING, 0, 0, ping, sizeof ping, out + n);
    n += gl_frame_encode(GL_FRAME_MESSAGE, 0, 1, msg, sizeof msg, out + n);
    n += gl_frame_encode(GL_FRAME_MESSAGE, GL_FLAG_END_STREAM, 3, NULL, 0, out + n);
    n += gl_frame_encode(GL_FRAME_TRAILERS, 0, 1, trailers, sizeof trailers, out + n);
    return n;
}

/* Habit 15: the same bytes parse identically whole and fed one byte at a time. */
static void test_parse_byte_by_byte(void)
{
    uint8_t buf[256];
    size_t n = build_stream(buf);
    gl_frame_parser p;
    gl_frame_header seen[8];
    uint8_t bodies[8][16];
    int count = 0;

    gl_frame_parser_init(&p, 0);
    for (size_t i = 0; i < n; i++) {
        gl_frame f;
        size_t used = 0;
        gl_parse_result r = gl_frame_parser_feed(&p, buf + i, 1, &used, &f);
        CHECK(used == 1);
        CHECK(r == GL_PARSE_NEED_MORE || r == GL_PARSE_FRAME);
        if (r == GL_PARSE_FRAME && count < 8) {
            seen[count] = f.header;
            CHECK(f.body != NULL);
            if (f.header.length <= sizeof bodies[0])
                memcpy(bodies[count], f.body, f.header.length);
            count++;
            /* a frame completes exactly at its last byte */
            CHECK(gl_frame_parser_at_boundary(&p));
        }
    }
    CHECK(count == 4);
    if (count == 4) {
        CHECK(seen[0].type == GL_FRAME_PING && seen[0].length == 8 && seen[0].stream_id == 0);
        CHECK(bodies[0][0] == 1 && bodies[0][7] == 8);
        CHECK(seen[1].type == GL_FRAME_MESSAGE && seen[1].length == 5 && seen[1].stream_id == 1);
        CHECK(memcmp(bodies[1], "\x0a\x03" "abc", 5) == 0);
        CHECK(seen[2].type == GL_FRAME_MESSAGE && seen[2].length == 0 &&
              seen[2].flags == GL_FLAG_END_STREAM && seen[2].stream_id == 3);
        CHECK(seen[3].type == GL_FRAME_TRAILERS && seen[3].length == 2);
    }
    gl_frame_parser_free(&p);
}

/* The parser stops after each frame: a caller feeding everything at once loops. */
static void test_parse_whole_buffer(void)
{
    uint8_t buf[256];
    size_t n = build_stream(buf), off = 0;
    gl_frame_parser p;
    int count = 0;

    gl_frame_parser_init(&p, 0);
    while (off < n) {
        gl_frame f;
        size_t used = 0;
        gl_parse_result r = gl_frame_parser_feed(&p, buf + off, n - off, &used, &f);
        off += used;
        if (r == GL_PARSE_FRAME)
            count++;
        else
            CHECK(r == GL_PARSE_NEED_MORE && off == n);
    }
    CHECK(count == 4);
    CHECK(gl_frame_parser_at_boundary(&p));
    gl_frame_parser_free(&p);
}

/* Rule: a MESSAGE above max-message-bytes is not read into memory; its body is discarded
 * as it streams past and the connection stays usable (the next frame parses). */
static void test_oversized_message_skipped(void)
{
    const uint32_t limit = 64, big = 1000;
    uint8_t *buf = calloc(1, 2 * GL_FRAME_HEADER_LEN + big + 8);
    static const uint8_t ping[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    gl_frame_parser p;
    int skipped = 0, frames = 0;

    CHECK(buf != NULL);
    if (buf == NULL)
        return;
    gl_frame_header h = {big, GL_FRAME_MESSAGE, 0, 5};
    gl_frame_header_encode(&h, buf);
    memset(buf + GL_FRAME_HEADER_LEN, 0xab, big);
    size_t n = GL_FRAME_HEADER_LEN + big;
    n += gl_frame_encode(GL_FRAME_PING, 0, 0, ping, sizeof ping, buf + n);

    gl_frame_parser_init(&p, limit);
    for (size_t i = 0; i < n; i++) {
        gl_frame f;
        size_t used = 0;
        gl_parse_result r = gl_frame_parser_feed(&p, buf + i, 1, &used, &f);
        if (r == GL_PARSE_SKIPPED) {
            skipped++;
            CHECK(f.header.type == GL_FRAME_MESSAGE && f.header.length == big);
            CHECK(f.header.stream_id == 5 && f.body == NULL);
            CHECK(i == GL_FRAME_HEADER_LEN + big - 1); /* reported once fully discarded */
        } else if (r == GL_PARSE_FRAME) {
            frames++;
            CHECK(f.header.type == GL_FRAME_PING);
        } else {
            CHECK(r == GL_PARSE_NEED_MORE);
        }
    }
    CHECK(skipped == 1 && frames == 1);
    CHECK(p.body_cap < big); /* never buffered */
    /* Exactly the limit is accepted. */
    gl_frame_header ok = {limit, GL_FRAME_MESSAGE, 0, 1};
    CHECK(gl_frame_header_check(&ok, limit, NULL, 0) == GL_FRAME_OK);
    gl_frame_parser_free(&p);
    free(buf);
}

/* Rule: oversized control frames (HEADERS/TRAILERS > 16 KiB, GOAWAY > 4 KiB) are a
 * connection error, and the error is sticky. */
static void test_oversized_control_frames(void)
{
    gl_frame_header t = {16385, GL_FRAME_TRAILERS, 0, 1};
    gl_frame_header g = {4097, GL_FRAME_GOAWAY, 0, 0};
    gl_frame_header hd = {16385, GL_FRAME_HEADERS, 0, 1};
    gl_frame_header t_ok = {16384, GL_FRAME_TRAILERS, 0, 1};
    gl_frame_header g_ok = {4096, GL_FRAME_GOAWAY, 0, 0};
    char err[160] = "";

    CHECK(gl_frame_header_check(&t, GL_DEFAULT_MAX_MESSAGE_BYTES, err, sizeof err) == GL_FRAME_INVALID);
    CHECK(strstr(err, "TRAILERS") != NULL);
    CHECK(gl_frame_header_check(&g, GL_DEFAULT_MAX_MESSAGE_BYTES, err, sizeof err) == GL_FRAME_INVALID);
    CHECK(gl_frame_header_check(&hd, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_INVALID);
    CHECK(gl_frame_header_check(&t_ok, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_OK);
    CHECK(gl_frame_header_check(&g_ok, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_OK);

    uint8_t b[GL_FRAME_HEADER_LEN + 1];
    gl_frame_header_encode(&t, b);
    b[GL_FRAME_HEADER_LEN] = 0;
    gl_frame_parser p;
    gl_frame f;
    size_t used = 0;
    gl_frame_parser_init(&p, 0);
    CHECK(gl_frame_parser_feed(&p, b, sizeof b, &used, &f) == GL_PARSE_ERROR);
    CHECK(strstr(p.error, "16385") != NULL);
    CHECK(gl_frame_parser_feed(&p, b, sizeof b, &used, &f) == GL_PARSE_ERROR);
    CHECK(used == 0);
    gl_frame_parser_free(&p);
}

/* Rule: connection errors: unknown type, stream frame on stream 0, PING body not 8 bytes,
 * CANCEL or END with a body, END on stream 0; PING/GOAWAY carry stream id 0. */
static void test_invalid_headers(void)
{
    static const gl_frame_header bad[] = {
        {0, 0, 0, 1},
        {0, 8, 0, 1},
        {0, GL_FRAME_END, 0, 0},
        {3, GL_FRAME_END, 0, 5},
        {5, GL_FRAME_MESSAGE, 0, 0},
        {2, GL_FRAME_TRAILERS, 0, 0},
        {7, GL_FRAME_PING, 0, 0},
        {9, GL_FRAME_PING, GL_FLAG_ACK, 0},
        {8, GL_FRAME_PING, 0, 1},
        {0, GL_FRAME_GOAWAY, 0, 3},
        {1, GL_FRAME_CANCEL, 0, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[160] = "";
        CHECK(gl_frame_header_check(&bad[i], GL_DEFAULT_MAX_MESSAGE_BYTES, err, sizeof err) ==
              GL_FRAME_INVALID);
        CHECK(err[0] != 0);
    }
    gl_frame_header ping = {8, GL_FRAME_PING, GL_FLAG_ACK, 0};
    gl_frame_header cancel = {0, GL_FRAME_CANCEL, 0, 7};
    CHECK(gl_frame_header_check(&ping, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_OK);
    CHECK(gl_frame_header_check(&cancel, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_OK);
    /* Frames: type 7 END, client -> server, stream != 0, empty body. */
    gl_frame_header end = {0, GL_FRAME_END, 0, 9};
    CHECK(gl_frame_header_check(&end, GL_DEFAULT_MAX_MESSAGE_BYTES, NULL, 0) == GL_FRAME_OK);
    CHECK(strcmp(gl_frame_type_name(GL_FRAME_END), "END") == 0);
    uint8_t b[GL_FRAME_HEADER_LEN];
    static const uint8_t want[GL_FRAME_HEADER_LEN] = {0, 0, 0, 0, 7, 0, 0, 0, 0, 9};
    CHECK(gl_frame_encode(GL_FRAME_END, 0, 9, NULL, 0, b) == GL_FRAME_HEADER_LEN);
    CHECK(memcmp(b, want, sizeof want) == 0);
}

/* A stream cut inside a header or a body yields no frame and leaves the parser off a
 * frame boundary, which the client reports as a truncated connection. */
static void test_truncated(void)
{
    uint8_t buf[64];
    static const uint8_t body[6] = {1, 2, 3, 4, 5, 6};
    size_t n = gl_frame_encode(GL_FRAME_MESSAGE, 0, 1, body, sizeof body, buf);

    for (size_t cut = 1; cut < n; cut++) {
        gl_frame_parser p;
        gl_frame f;
        size_t used = 0;
        gl_frame_parser_init(&p, 0);
        CHECK(gl_frame_parser_feed(&p, buf, cut, &used, &f) == GL_PARSE_NEED_MORE);
        CHECK(used == cut);
        CHECK(!gl_frame_parser_at_boundary(&p));
        /* the rest completes it */
        CHECK(gl_frame_parser_feed(&p, buf + cut, n - cut, &used, &f) == GL_PARSE_FRAME);
        CHECK(used == n - cut && f.header.length == sizeof body);
        CHECK(memcmp(f.body, body, sizeof body) == 0);
        gl_frame_parser_free(&p);
    }
    gl_frame_parser p;
    gl_frame_parser_init(&p, 0);
    CHECK(gl_frame_parser_at_boundary(&p));
    gl_frame_parser_free(&p);
}

/* END_STREAM / ACK share bit 0; other flag bits pass through untouched. */
static void test_flags(void)
{
    uint8_t b[GL_FRAME_HEADER_LEN];
    gl_frame_header h = {0, GL_FRAME_HEADERS, 0, 1}, d;
    gl_frame_header_encode(&h, b);
    b[5] |= GL_FLAG_END_STREAM; /* how the client half-closes a buffered frame */
    gl_frame_header_decode(b, &d);
    CHECK(d.flags == GL_FLAG_END_STREAM && d.type == GL_FRAME_HEADERS);
    CHECK(strcmp(gl_frame_type_name(GL_FRAME_GOAWAY), "GOAWAY") == 0);
    CHECK(strcmp(gl_frame_type_name(42), "UNKNOWN") == 0);
}

int main(void)
{
    run("header layout is big-endian, 10 bytes", test_header_layout);
    run("header round trip", test_header_round_trip);
    run("parse byte by byte", test_parse_byte_by_byte);
    run("parse whole buffer", test_parse_whole_buffer);
    run("oversized MESSAGE skipped, not buffered", test_oversized_message_skipped);
    run("oversized control frames are connection errors", test_oversized_control_frames);
    run("invalid headers are connection errors", test_invalid_headers);
    run("truncated frames", test_truncated);
    run("flags", test_flags);
    return check_report();
}
