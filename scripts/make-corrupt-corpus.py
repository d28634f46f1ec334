#!/usr/bin/env python3
"""Writes tests/fixtures/corrupt/: inputs that profile::report::read must reject with an
error (never a panic, never unbounded memory). Run from the repository root."""
import gzip, os, random, zlib

OUT = "tests/fixtures/corrupt"

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload

def msg(*fields):
    return b"".join(fields)

def string_table(*strings):
    return b"".join(field(6, 2, s.encode()) for s in strings)

# profile.proto field numbers
SAMPLE_TYPE, SAMPLE, MAPPING, LOCATION, FUNCTION = 1, 2, 3, 4, 5
def value_type(t, u): return field(SAMPLE_TYPE, 2, msg(field(1, 0, t), field(2, 0, u)))
def sample(locs, values):
    return field(SAMPLE, 2, msg(field(1, 2, b"".join(varint(l) for l in locs)),
                                field(2, 2, b"".join(varint(v) for v in values))))
def location(id_, fn_id, mapping=0):
    line = field(4, 2, msg(field(1, 0, fn_id), field(2, 0, 7)))
    return field(LOCATION, 2, msg(field(1, 0, id_), field(2, 0, mapping), line))
def function(id_, name):
    return field(FUNCTION, 2, msg(field(1, 0, id_), field(2, 0, name)))

STRINGS = string_table("", "samples", "count", "main")
GOOD = msg(value_type(1, 2), sample([1], [5]), location(1, 1), function(1, 3), STRINGS)

def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)

os.makedirs(OUT, exist_ok=True)
write("empty.pb", b"")
write("empty.pb.gz", gzip.compress(b"", mtime=0))
random.seed(7)
write("random-bytes.bin", bytes(random.getrandbits(8) for _ in range(512)))
good_gz = gzip.compress(GOOD, mtime=0)
write("truncated-gzip.pb.gz", good_gz[: len(good_gz) // 2])
bad_crc = bytearray(good_gz); bad_crc[-6] ^= 0xFF
write("bad-gzip-crc.pb.gz", bytes(bad_crc))
write("gzip-of-garbage.pb.gz", gzip.compress(b"\xff" * 64, mtime=0))
write("truncated-protobuf.pb", GOOD[:-5])
write("bad-wire-type.pb", GOOD + bytes([(9 << 3) | 7]))
write("string-index-out-of-range.pb",
      msg(value_type(1, 99), sample([1], [5]), location(1, 1), function(1, 3), STRINGS))
write("missing-location.pb",
      msg(value_type(1, 2), sample([5], [5]), location(1, 1), function(1, 3), STRINGS))
write("missing-function.pb",
      msg(value_type(1, 2), sample([1], [5]), location(1, 4), function(1, 3), STRINGS))
write("missing-mapping.pb",
      msg(value_type(1, 2), sample([1], [5]), location(1, 1, mapping=3), function(1, 3), STRINGS))
write("value-count-mismatch.pb",
      msg(value_type(1, 2), value_type(1, 2), sample([1], [5]), location(1, 1), function(1, 3), STRINGS))
write("zero-location-id.pb",
      msg(value_type(1, 2), sample([0], [5]), location(0, 1), function(1, 3), STRINGS))
write("duplicate-function-id.pb",
      msg(value_type(1, 2), sample([1], [5]), location(1, 1), function(1, 3), function(1, 3), STRINGS))
write("first-string-not-empty.pb",
      msg(value_type(1, 2), string_table("x", "samples", "count")))
# 300 MiB of zeros: inflates past the 256 MiB limit (a decompression bomb).
c = zlib.compressobj(9, zlib.DEFLATED, 31)
chunk = b"\0" * (1 << 20)
bomb = b"".join(c.compress(chunk) for _ in range(300)) + c.flush()
write("bomb-300MiB-of-zeros.pb.gz", bomb)
# Memory amplifiers: small files that would take gigabytes once decoded.
# 200 million frames in one packed stack (1.6 GB of u64s): 190 KB of gzip.
N = 200_000_000
c = zlib.compressobj(9, zlib.DEFLATED, 31)
loc_key = varint((1 << 3) | 2) + varint(N)
val = field(2, 2, varint(5))
parts = [c.compress(value_type(1, 2) + varint((2 << 3) | 2) + varint(len(loc_key) + N + len(val)) + loc_key)]
ones = b"\x01" * (1 << 20)
left = N
while left > 0:
    n = min(left, len(ones))
    parts.append(c.compress(ones[:n]))
    left -= n
parts.append(c.compress(val + location(1, 1) + function(1, 3) + STRINGS))
parts.append(c.flush())
write("amplify-200M-frame-stack.pb.gz", b"".join(parts))
# One location with 100 000 inlined lines, named by 100 000 samples: 10^10 frames.
lines = b"".join(field(4, 2, msg(field(1, 0, 1), field(2, 0, 7))) for _ in range(100_000))
big_loc = field(LOCATION, 2, msg(field(1, 0, 1), lines))
write("amplify-inlined-lines.pb.gz", gzip.compress(
    msg(value_type(1, 2), b"".join(sample([1], [1]) for _ in range(100_000)), big_loc,
        function(1, 3), STRINGS), mtime=0))
# 3000 functions all named by one 1 MB string: 3 GB of copied names.
write("amplify-shared-long-name.pb.gz", gzip.compress(
    msg(value_type(1, 2), b"".join(function(i, 4) for i in range(1, 3001)),
        string_table("", "samples", "count", "main", "x" * (1 << 20))), mtime=0))
print("wrote", len(os.listdir(OUT)), "files")
