"""Draw the integration's brand images into custom_components/fleet_metrics/brand/.

Home Assistant 2026.3+ serves a custom integration's own ``brand/`` images and HACS looks for
``brand/icon.png``; older Home Assistant ignores the folder. The icon is a rounded plate with
four bars and a trend line. It is drawn here, with the standard library only, so the committed
PNGs can be rebuilt exactly: the shapes are signed distance functions sampled with nothing but
+, -, *, / and sqrt (correctly rounded everywhere, so the pixels do not depend on the platform's
libm), edges are anti-aliased by supersampling, and the PNG has no timestamp or other metadata.
Pillow could draw the shapes, but its anti-aliasing and encoder output change between releases.

Run from the repository root: ``python scripts/make_brand.py``.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from math import sqrt
from pathlib import Path

BRAND = Path(__file__).parents[1] / "custom_components" / "fleet_metrics" / "brand"

# File name and side in pixels; Home Assistant uses the name to pick the image.
ICONS = {"icon.png": 256, "icon@2x.png": 512}

SUPERSAMPLE = 5  # 5 x 5 samples per pixel on shape edges
Colour = tuple[float, float, float]
Distance = Callable[[float, float], float]

PLATE_TOP: Colour = (0.173, 0.620, 0.757)  # teal blue, lighter at the top
PLATE_BOTTOM: Colour = (0.082, 0.341, 0.600)
BARS: Colour = (0.965, 0.976, 0.988)
TREND: Colour = (1.000, 0.757, 0.176)  # amber


def rounded_box(left: float, top: float, right: float, bottom: float, radius: float) -> Distance:
    """Signed distance to a rectangle with round corners (negative inside)."""
    cx, cy = (left + right) / 2, (top + bottom) / 2
    hx, hy = (right - left) / 2 - radius, (bottom - top) / 2 - radius

    def distance(x: float, y: float) -> float:
        qx, qy = abs(x - cx) - hx, abs(y - cy) - hy
        ox, oy = max(qx, 0.0), max(qy, 0.0)
        return sqrt(ox * ox + oy * oy) + min(max(qx, qy), 0.0) - radius

    return distance


def capsule(ax: float, ay: float, bx: float, by: float, radius: float) -> Distance:
    """Signed distance to a segment drawn with a round pen of the given radius."""
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy

    def distance(x: float, y: float) -> float:
        t = 0.0 if length2 == 0 else min(max(((x - ax) * dx + (y - ay) * dy) / length2, 0.0), 1.0)
        px, py = x - ax - t * dx, y - ay - t * dy
        return sqrt(px * px + py * py) - radius

    return distance


def union(*shapes: Distance) -> Distance:
    """Distance to several shapes at once; never more than the true distance, which is safe."""

    def distance(x: float, y: float) -> float:
        return min(shape(x, y) for shape in shapes)

    return distance


@dataclass(frozen=True)
class Layer:
    """One shape in one colour (or a top-to-bottom gradient), in unit coordinates."""

    shape: Distance
    bounds: tuple[float, float, float, float]  # left, top, right, bottom
    top: Colour
    bottom: Colour | None = None

    def colour(self, y: float) -> Colour:
        if self.bottom is None:
            return self.top
        return (
            self.top[0] + (self.bottom[0] - self.top[0]) * y,
            self.top[1] + (self.bottom[1] - self.top[1]) * y,
            self.top[2] + (self.bottom[2] - self.top[2]) * y,
        )


def icon_layers() -> list[Layer]:
    """The icon, back to front, on a unit square (y grows downwards)."""
    base, width, gap = 0.80, 0.12, 0.06
    heights = (0.22, 0.34, 0.28, 0.48)
    bars = []
    tops = []
    for index, height in enumerate(heights):
        left = 0.17 + index * (width + gap)
        bars.append(rounded_box(left, base - height, left + width, base, 0.03))
        tops.append((left + width / 2, base - height - 0.12))
    pen = 0.03
    segments = [capsule(*a, *b, pen) for a, b in pairwise(tops)]
    last_x, last_y = tops[-1]
    dot = capsule(last_x, last_y, last_x, last_y, 0.065)
    return [
        Layer(rounded_box(0.0, 0.0, 1.0, 1.0, 0.22), (0.0, 0.0, 1.0, 1.0), PLATE_TOP, PLATE_BOTTOM),
        Layer(union(*bars), (0.17, base - max(heights), 0.83, base), BARS),
        Layer(union(*segments, dot), (0.10, 0.10, 0.90, 0.60), TREND),
    ]


def coverage(shape: Distance, x0: float, y0: float, pixel: float) -> float:
    """Share of the pixel with corner (x0, y0) inside the shape.

    Far from an edge the answer is 0 or 1 from one sample at the centre; near one, an evenly
    spaced grid of samples is counted.
    """
    half = pixel / 2
    centre = shape(x0 + half, y0 + half)
    if centre >= pixel:
        return 0.0
    if centre <= -pixel:
        return 1.0
    step = pixel / SUPERSAMPLE
    inside = 0
    for j in range(SUPERSAMPLE):
        sy = y0 + (j + 0.5) * step
        for i in range(SUPERSAMPLE):
            if shape(x0 + (i + 0.5) * step, sy) < 0:
                inside += 1
    return inside / (SUPERSAMPLE * SUPERSAMPLE)


def render_rgba(size: int, layers: list[Layer]) -> bytes:
    """Composite the layers over transparency; straight (not premultiplied) RGBA, 8 bits."""
    pixel = 1.0 / size
    # Premultiplied red, green, blue, alpha per pixel.
    canvas = [[0.0, 0.0, 0.0, 0.0] for _ in range(size * size)]
    for layer in layers:
        left, top, right, bottom = layer.bounds
        first_x, last_x = max(int(left * size) - 1, 0), min(int(right * size) + 2, size)
        first_y, last_y = max(int(top * size) - 1, 0), min(int(bottom * size) + 2, size)
        for py in range(first_y, last_y):
            y0 = py * pixel
            red, green, blue = layer.colour(y0 + pixel / 2)
            for px in range(first_x, last_x):
                cover = coverage(layer.shape, px * pixel, y0, pixel)
                if cover == 0.0:
                    continue
                cell = canvas[py * size + px]
                keep = 1.0 - cover
                cell[0] = red * cover + cell[0] * keep
                cell[1] = green * cover + cell[1] * keep
                cell[2] = blue * cover + cell[2] * keep
                cell[3] = cover + cell[3] * keep
    out = bytearray()
    for red, green, blue, alpha in canvas:
        if alpha == 0.0:
            out += b"\0\0\0\0"
            continue
        out += bytes(
            (
                _byte(red / alpha),
                _byte(green / alpha),
                _byte(blue / alpha),
                _byte(alpha),
            )
        )
    return bytes(out)


def _byte(value: float) -> int:
    return min(max(int(value * 255 + 0.5), 0), 255)


def encode_png(size: int, rgba: bytes) -> bytes:
    """A square 8-bit RGBA PNG: IHDR, one IDAT, IEND, nothing that varies between runs.

    Each row uses the Up filter (the plate is a vertical gradient, so rows differ little).
    """
    stride = size * 4
    raw = bytearray()
    previous = bytes(stride)
    for row in range(size):
        line = rgba[row * stride : (row + 1) * stride]
        raw.append(2)
        raw += bytes((a - b) & 0xFF for a, b in zip(line, previous, strict=True))
        previous = line

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8 bits, RGBA, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def render_icon(size: int) -> bytes:
    """The icon as PNG file content, size x size pixels."""
    return encode_png(size, render_rgba(size, icon_layers()))


def main() -> int:
    BRAND.mkdir(parents=True, exist_ok=True)
    for name, size in ICONS.items():
        data = render_icon(size)
        (BRAND / name).write_bytes(data)
        print(f"{name}: {size}x{size}, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
