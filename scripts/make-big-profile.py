#!/usr/bin/env python3
"""Writes a large synthetic CPU-like profile (100 000 samples, 20 000 functions, stacks 10-40
deep) to the path given (default /tmp/big.pb.gz), for timing profile-report against
go tool pprof (docs/performance.md). Run from the repository root."""
import gzip, random, sys

src = open("scripts/make-corrupt-corpus.py").read().split("STRINGS =")[0]
exec(src)  # the protobuf helpers: value_type, function, location, sample, string_table

random.seed(1)
NF, NS = 20000, 100000
strings = ["", "samples", "count", "cpu", "nanoseconds"] + [
    f"crate::module{i % 97}::function_{i}" for i in range(NF)
]
parts = [value_type(1, 2), value_type(3, 4)]
for i in range(1, NF + 1):
    parts.append(function(i, 4 + i))
    parts.append(location(i, i))
for _ in range(NS):
    depth = random.randint(10, 40)
    locs = [random.randint(1, 50)] + [
        int(random.paretovariate(1.2)) % NF + 1 for _ in range(depth - 1)
    ]
    c = random.randint(1, 5)
    parts.append(sample(list(reversed(locs)), [c, c * 10000000]))
parts.append(string_table(*strings))
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/big.pb.gz"
open(out, "wb").write(gzip.compress(b"".join(parts), 6))
print("wrote", out)
