#!/usr/bin/env python3
"""Draw the web app's favicon (``src/mepgate/web/static/favicon.ico``): a lightning bolt on the
pages' accent blue, as 16, 32 and 48 px PNGs in one ICO file.  Plain Python, no image library.

    .venv/bin/python scripts/favicon.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).parents[1] / "src" / "mepgate" / "web" / "static" / "favicon.ico"
BLUE = (29, 78, 216)  # app.css --accent
WHITE = (255, 255, 255)
BOLT = [(0.58, 0.08), (0.22, 0.56), (0.47, 0.56), (0.40, 0.92), (0.78, 0.42), (0.53, 0.42)]
BOLT.append((0.62, 0.08))
SIZES = (16, 32, 48)
SUBSAMPLES = 4  # per pixel and axis: smooth edges


def inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def in_rounded_square(x: float, y: float, radius: float = 0.18) -> bool:
    cx, cy = min(max(x, radius), 1 - radius), min(max(y, radius), 1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius


def pixel(px: int, py: int, size: int) -> bytes:
    card = bolt = 0
    for sy in range(SUBSAMPLES):
        for sx in range(SUBSAMPLES):
            x = (px + (sx + 0.5) / SUBSAMPLES) / size
            y = (py + (sy + 0.5) / SUBSAMPLES) / size
            if in_rounded_square(x, y):
                card += 1
                bolt += inside(BOLT, x, y)
    if not card:
        return bytes(4)
    white = bolt / card
    rgb = [round(b * (1 - white) + w * white) for b, w in zip(BLUE, WHITE, strict=True)]
    return bytes([*rgb, round(255 * card / SUBSAMPLES**2)])


def png(size: int) -> bytes:
    rows = b"".join(
        b"\0" + b"".join(pixel(px, py, size) for px in range(size)) for py in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def ico(images: dict[int, bytes]) -> bytes:
    offset = 6 + 16 * len(images)
    entries = b""
    for size, data in images.items():
        entries += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return struct.pack("<HHH", 0, 1, len(images)) + entries + b"".join(images.values())


if __name__ == "__main__":
    OUT.write_bytes(ico({size: png(size) for size in SIZES}))
    print(f"wrote {OUT}")
