"""Draw Ahoy's PNG icons (the same picture as icon.svg) with the standard library only.

Run from anywhere: python3 webclient/make_icons.py. The PNGs are committed;
rerun only when the icon changes.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

TEAL = (11, 110, 117)
WHITE = (255, 255, 255)
HERE = Path(__file__).resolve().parent / "app" / "icons"


def _in_rounded_rect(x: float, y: float, size: float, radius: float) -> bool:
    cx = min(max(x, radius), size - radius)
    cy = min(max(y, radius), size - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2 and 0 <= x <= size and 0 <= y <= size


def _in_bubble(x: float, y: float) -> bool:
    """Speech bubble in the 512 design grid: an ellipse and a tail at the lower left."""
    if ((x - 256) / 164) ** 2 + ((y - 240) / 136) ** 2 <= 1:
        return True
    # tail triangle (136,410) (150,330) (222,370)
    ax, ay, bx, by, cx, cy = 136, 410, 150, 330, 222, 370
    d1 = (x - bx) * (ay - by) - (ax - bx) * (y - by)
    d2 = (x - cx) * (by - cy) - (bx - cx) * (y - cy)
    d3 = (x - ax) * (cy - ay) - (cx - ax) * (y - ay)
    neg = d1 < 0 or d2 < 0 or d3 < 0
    pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (neg and pos)


def _on_wave(x: float, y: float) -> bool:
    """The wave across the bubble, a sine stroke 22 units wide with round ends."""
    if x < 139 or x > 365:
        return False
    best = 1e9
    for i in range(0, 61):
        px = 150 + 204 * i / 60
        py = 262 - 16.5 * math.sin(math.pi * (px - 150) / 68)
        best = min(best, (x - px) ** 2 + (y - py) ** 2)
    return best <= 11**2


def _pixel(x: float, y: float, maskable: bool) -> tuple[int, int, int, int]:
    if maskable:
        # Full-bleed background; the picture shrinks into the 80 % safe zone.
        gx, gy = (x - 256) / 0.8 + 256, (y - 256) / 0.8 + 256
        inside = True
    else:
        gx, gy = x, y
        inside = _in_rounded_rect(x, y, 512, 112)
    if not inside:
        return (0, 0, 0, 0)
    if _in_bubble(gx, gy) and not _on_wave(gx, gy):
        return (*WHITE, 255)
    return (*TEAL, 255)


def render(size: int, maskable: bool = False, samples: int = 2) -> bytes:
    scale = 512 / size
    rows = []
    for py in range(size):
        row = bytearray([0])  # PNG filter type 0
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples) * scale
                    y = (py + (sy + 0.5) / samples) * scale
                    r, g, b, a = _pixel(x, y, maskable)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = samples * samples
            alpha = acc[3] / n
            if acc[3]:
                total = acc[3]
                rgb = (round(acc[0] / total), round(acc[1] / total), round(acc[2] / total))
                row += bytes((*rgb, round(alpha)))
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return _png(size, size, b"".join(rows))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def main() -> None:
    (HERE / "icon-192.png").write_bytes(render(192))
    (HERE / "icon-512.png").write_bytes(render(512))
    (HERE / "maskable-512.png").write_bytes(render(512, maskable=True))


if __name__ == "__main__":
    main()
