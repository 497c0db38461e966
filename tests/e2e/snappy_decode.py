# Independent decoder of the snappy framing format (framing_format.txt + format_description.txt
# of google/snappy), for checking stream-firehose --compress snappy: prints the data.
import sys


def raw(b):
    i = n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    out = bytearray()
    while i < len(b):
        t = b[i]
        i += 1
        kind = t & 3
        if kind == 0:
            ln = t >> 2
            if ln >= 60:
                k = ln - 59
                ln = int.from_bytes(b[i:i + k], "little")
                i += k
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((t >> 2) & 7) + 4
            off = ((t >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (t >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (t >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n, (len(out), n)
    return bytes(out)


data = open(sys.argv[1], "rb").read()
assert data[:10] == b"\xff\x06\x00\x00sNaPpY", "no stream identifier"
i = 10
res = bytearray()
while i < len(data):
    typ = data[i]
    ln = int.from_bytes(data[i + 1:i + 4], "little")
    body = data[i + 4:i + 4 + ln]
    i += 4 + ln
    if typ == 0:
        res += raw(body[4:])
    elif typ == 1:
        res += body[4:]
    elif typ < 0x80:
        raise SystemExit("reserved unskippable chunk")
sys.stdout.buffer.write(res)
