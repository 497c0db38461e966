"""Raw wire-protocol helpers for the e2e tests that must misbehave on purpose
(pipelining without reading, parking many long-polls). Frames as in docs/PROTOCOL.md."""
import socket
import struct

HELLO, FETCH = 1, 7


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def frame(corr, typ, payload):
    return struct.pack("<IIH", 6 + len(payload), corr, typ) + payload


def connect(sock_path, client_name):
    """A connected socket that has sent its Hello (correlation id 1)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    name = client_name.encode()
    s.sendall(frame(1, HELLO, struct.pack("<HH", 2, 2) + varint(len(name)) + name))
    return s


FETCH_STAY = 1  # request fetch_flags bit 0 (PROTOCOL.md §7.7)
FETCH_MORE = 2  # response flags bit 1: more answers follow on this correlation id


def fetch(corr, stream, shard, offset, max_bytes, wait_ms, flags=None):
    name = stream.encode()
    tail = b"" if flags is None else bytes([flags])  # fetch_flags is optional
    return frame(corr, FETCH, varint(len(name)) + name + struct.pack("<IQII", shard, offset, max_bytes, wait_ms) + tail)


class Reader:
    """Reads whole response frames: next() -> (corr, type, err, frame length)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, bytearray()

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed by the server")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def next(self):
        (n,) = struct.unpack("<I", self._exact(4))
        body = self._exact(n)
        corr, typ, err = struct.unpack_from("<IHH", body)
        assert err == 0, (corr, err, body[:80])
        self.body = body
        return corr, typ, err, n

    def fetch_answer(self):
        """The next response, a successful Fetch answer: (corr, next_offset, flags, frame length)."""
        corr, typ, _, n = self.next()
        assert typ == FETCH | 0x8000, typ
        assert self.body[8] == 0, "message not empty"
        next_offset, _end, _start, flags = struct.unpack_from("<QQQB", self.body, 9)
        return corr, next_offset, flags, n
