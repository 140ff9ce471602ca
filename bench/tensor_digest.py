#!/usr/bin/python3
"""Prints one line per tensor of a seqrec model file: name, dtype, shape, sha256 of its bytes.

Two model files trained the same way have identical lines exactly when their tensors are
bit-identical, whatever their JSON headers (creation time, timings, config spelling) say.
Usage: bench/tensor_digest.py MODEL.seqrec
"""
import hashlib
import json
import struct
import sys


def digest(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"SQRCMODL" or len(data) < 40:
        sys.exit(f"{path}: not a seqrec model file")
    (header_len,) = struct.unpack_from("<Q", data, 16)
    header = json.loads(data[24:24 + header_len])
    align = int(header.get("alignment", 64))
    start = 24 + header_len
    start = (start + align - 1) // align * align
    lines = []
    for t in header["tensors"]:
        at = start + int(t["offset"])
        blob = data[at:at + int(t["nbytes"])]
        lines.append(f'{t["name"]}\t{t["dtype"]}\t{t["shape"]}\t{hashlib.sha256(blob).hexdigest()}')
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print("\n".join(digest(sys.argv[1])))
