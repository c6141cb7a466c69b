#!/usr/bin/env python3
# tests/lib/png_regions.py -- how many strongly coloured pixels lie in each region of a PNG.
#
# Usage: png_regions.py FILE.png SCALE < regions
# Each line of regions is "NAME X Y WIDTH HEIGHT ..." in CSS pixels (extra fields are
# ignored); SCALE is the device scale factor the screenshot was taken at.  Prints
# "size W H" for the image, then "NAME N" per region: N pixels whose channels differ by
# more than 60 (a bar's colour, not the white, grey or black of background and text).
# The standard library only: a PNG decoder for 8-bit RGB or RGBA, not interlaced (what
# Chromium writes).  The "Up" filter, most of a screenshot's rows, is undone a row at a
# time on big integers (bytewise addition without carries); the others byte by byte.
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("%s: not a PNG file" % path)
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, lace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    if depth != 8 or ctype not in (2, 6) or lace != 0:
        sys.exit("%s: only 8-bit RGB or RGBA, not interlaced (depth %d, colour type %d)"
                 % (path, depth, ctype))
    bpp = 4 if ctype == 6 else 3
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    lo = int.from_bytes(b"\x7f" * stride, "little")
    hi = int.from_bytes(b"\x80" * stride, "little")
    rows, prev = [], bytes(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if f == 2:
            x, p = int.from_bytes(line, "little"), int.from_bytes(prev, "little")
            line = (((x & lo) + (p & lo)) ^ ((x ^ p) & hi)).to_bytes(stride, "little")
        elif f != 0:
            out = bytearray(line)
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                if f == 1:
                    out[i] = (out[i] + a) & 255
                elif f == 3:
                    out[i] = (out[i] + ((a + prev[i]) >> 1)) & 255
                else:
                    b = prev[i]
                    c = prev[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            line = bytes(out)
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def main():
    w, h, bpp, rows = decode(sys.argv[1])
    scale = float(sys.argv[2])
    print("size", w, h)
    for spec in sys.stdin:
        f = spec.split()
        if len(f) < 5:
            continue
        x, y, bw, bh = (int(round(float(v) * scale)) for v in f[1:5])
        n = 0
        for yy in range(max(y, 0), min(y + bh, h)):
            r = rows[yy]
            for xx in range(max(x, 0), min(x + bw, w)):
                px = r[xx * bpp:xx * bpp + 3]
                if max(px) - min(px) > 60:
                    n += 1
        print(f[0], n)


main()
