import struct

import pytest

from gridledger.frames import (
    FLAG_ACK, FLAG_END_STREAM, HEADER_SIZE, Frame, FrameDecoder, FrameError, FrameType,
    OversizedMessage, TruncatedFrameError, encode_frame,
)


def test_header_layout():
    data = encode_frame(FrameType.MESSAGE, FLAG_END_STREAM, 0x01020304, b"hello")
    assert data[:HEADER_SIZE] == b"\x00\x00\x00\x05\x02\x01\x01\x02\x03\x04"
    assert data[HEADER_SIZE:] == b"hello"
    assert struct.unpack(">IBBI", data[:10]) == (5, 2, 1, 0x01020304)


def test_round_trip_all_types():
    frames = [
        Frame(FrameType.HEADERS, FLAG_END_STREAM, 1, b"h" * 100),
        Frame(FrameType.MESSAGE, 0, 1, b""),
        Frame(FrameType.MESSAGE, FLAG_END_STREAM, 3, bytes(range(256)) * 10),
        Frame(FrameType.TRAILERS, 0, 3, b"t"),
        Frame(FrameType.CANCEL, 0, 5, b""),
        Frame(FrameType.PING, 0, 0, b"12345678"),
        Frame(FrameType.PING, FLAG_ACK, 0, b"12345678"),
        Frame(FrameType.GOAWAY, 0, 0, b"g" * 10),
        Frame(FrameType.END, 0, 7, b""),
    ]
    data = b"".join(f.encode() for f in frames)
    dec = FrameDecoder()
    assert dec.feed(data) == frames  # many frames in one chunk
    assert dec.at_boundary
    dec.eof()


def test_byte_by_byte():
    frames = [Frame(FrameType.MESSAGE, 0, 1, b"abc"), Frame(FrameType.TRAILERS, 0, 1, b""),
              Frame(FrameType.PING, 0, 0, b"\0" * 8)]
    data = b"".join(f.encode() for f in frames)
    dec = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += dec.feed(data[i:i + 1])
    assert out == frames
    assert dec.at_boundary


@pytest.mark.parametrize("chunk", [2, 3, 7, 11, 13, 64])
def test_arbitrary_chunks(chunk):
    frames = [Frame(FrameType.MESSAGE, i % 2, 2 * i + 1, bytes([i]) * i) for i in range(50)]
    data = b"".join(f.encode() for f in frames)
    dec = FrameDecoder()
    out = []
    for i in range(0, len(data), chunk):
        out += dec.feed(data[i:i + chunk])
    assert out == frames


def test_oversized_message_skipped_without_buffering():
    dec = FrameDecoder(max_message_bytes=1000)
    big = encode_frame(FrameType.MESSAGE, FLAG_END_STREAM, 7, b"x" * 1_000_000)
    after = encode_frame(FrameType.MESSAGE, 0, 9, b"y" * 1000)  # exactly the limit is fine
    events = dec.feed(big[:20])
    assert events == [OversizedMessage(7, 1_000_000, FLAG_END_STREAM)]
    assert dec.buffered == 0
    for i in range(20, len(big), 4096):
        assert dec.feed(big[i:i + 4096]) == []
        assert dec.buffered == 0  # the body is discarded, never held
    assert dec.feed(after) == [Frame(FrameType.MESSAGE, 0, 9, b"y" * 1000)]
    assert dec.at_boundary


def test_oversized_in_one_chunk_with_following_frames():
    dec = FrameDecoder(max_message_bytes=10)
    data = (encode_frame(FrameType.MESSAGE, 0, 1, b"z" * 11)
            + encode_frame(FrameType.TRAILERS, 0, 1, b"ok"))
    assert dec.feed(data) == [OversizedMessage(1, 11, 0), Frame(FrameType.TRAILERS, 0, 1, b"ok")]


def test_truncated():
    data = encode_frame(FrameType.MESSAGE, 0, 1, b"abcdef")
    for cut in (1, HEADER_SIZE - 1, HEADER_SIZE, len(data) - 1):
        dec = FrameDecoder()
        assert dec.feed(data[:cut]) == []
        assert not dec.at_boundary
        with pytest.raises(TruncatedFrameError):
            dec.eof()
    dec = FrameDecoder(max_message_bytes=2)
    assert dec.feed(data[:12]) == [OversizedMessage(1, 6, 0)]
    with pytest.raises(TruncatedFrameError):
        dec.eof()


@pytest.mark.parametrize("data, match", [
    (encode_frame(9, 0, 1, b""), "unknown frame type 9"),
    (encode_frame(0, 0, 1, b""), "unknown frame type 0"),
    (encode_frame(FrameType.MESSAGE, 0, 0, b"x"), "stream 0"),
    (encode_frame(FrameType.TRAILERS, 0, 0, b""), "stream 0"),
    (encode_frame(FrameType.PING, 0, 1, b"12345678"), "must be 0"),
    (encode_frame(FrameType.GOAWAY, 0, 3, b""), "must be 0"),
    (encode_frame(FrameType.PING, 0, 0, b"1234567"), "8"),
    (encode_frame(FrameType.CANCEL, 0, 1, b"x"), "exceeds"),
    (encode_frame(FrameType.END, 0, 1, b"x"), "exceeds"),
    (encode_frame(FrameType.END, 0, 0, b""), "stream 0"),
])
def test_connection_errors(data, match):
    dec = FrameDecoder()
    with pytest.raises(FrameError, match=match):
        dec.feed(data)
    with pytest.raises(FrameError):  # the decoder stays failed
        dec.feed(b"")


def test_oversized_control_frame_rejected_at_header():
    dec = FrameDecoder()
    header = encode_frame(FrameType.TRAILERS, 0, 1, b"x" * (16 * 1024 + 1))[:HEADER_SIZE]
    with pytest.raises(FrameError, match="TRAILERS"):
        dec.feed(header)
    header = encode_frame(FrameType.GOAWAY, 0, 0, b"x" * 4097)[:HEADER_SIZE]
    with pytest.raises(FrameError, match="GOAWAY"):
        FrameDecoder().feed(header)
    # Exactly at the limit is accepted.
    ok = encode_frame(FrameType.HEADERS, 0, 1, b"x" * (16 * 1024))
    assert len(FrameDecoder().feed(ok)) == 1


def test_encode_rejects_out_of_range():
    with pytest.raises(ValueError):
        encode_frame(FrameType.MESSAGE, 0, 1 << 32, b"")
    with pytest.raises(ValueError):
        encode_frame(256, 0, 1, b"")
