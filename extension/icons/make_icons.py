"""Draw the toolbar icons (a white "F" on a green rounded square) as PNGs, without libraries.

Run from the repository root: python3 extension/icons/make_icons.py
Not shipped: scripts/pack-extension leaves it out of the zip.
"""

import struct
import zlib
from pathlib import Path

SIZES = (16, 32, 48, 128)
GREEN = (76, 160, 46)
WHITE = (255, 255, 255)
SUPERSAMPLE = 4


def inside_rounded_square(x: float, y: float, radius: float) -> bool:
    cx = min(max(x, radius), 1 - radius)
    cy = min(max(y, radius), 1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def inside_letter(x: float, y: float) -> bool:
    stem = 0.30 <= x <= 0.45 and 0.20 <= y <= 0.80
    top = 0.30 <= x <= 0.72 and 0.20 <= y <= 0.34
    middle = 0.30 <= x <= 0.64 and 0.44 <= y <= 0.57
    return stem or top or middle


def pixel(size: int, px: int, py: int) -> tuple[int, int, int, int]:
    """Average of SUPERSAMPLE² samples: colour channels premultiplied, then un-multiplied."""
    red = green = blue = alpha = 0.0
    for sy in range(SUPERSAMPLE):
        for sx in range(SUPERSAMPLE):
            x = (px + (sx + 0.5) / SUPERSAMPLE) / size
            y = (py + (sy + 0.5) / SUPERSAMPLE) / size
            if not inside_rounded_square(x, y, 0.22):
                continue
            colour = WHITE if inside_letter(x, y) else GREEN
            red, green, blue = red + colour[0], green + colour[1], blue + colour[2]
            alpha += 1
    if alpha == 0:
        return (0, 0, 0, 0)
    return (round(red / alpha), round(green / alpha), round(blue / alpha),
            round(255 * alpha / SUPERSAMPLE**2))


def png(size: int) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(size, x, y)) for x in range(size)) for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main() -> None:
    here = Path(__file__).resolve().parent
    for size in SIZES:
        (here / f"flattr-{size}.png").write_bytes(png(size))


if __name__ == "__main__":
    main()
