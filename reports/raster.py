"""Large heatmaps as PNG images: one pixel per cell, written directly (no browser, no Vega).

A Vega heatmap carries every cell as data: about 14 bytes per stored cell, so a
250-sentence head (31,375 cells) adds about 450 KB to its page and takes Vega a long time
to draw. Above ``VEGA_MAX_SENTENCES`` sentences the report draws the same picture as an
8-bit palette PNG instead (a few tens of KB): the same color scale (Vega's "blues" from 0
to the notebook's 99th percentile, clamped), the same red tint over target rows and
columns, blank above the diagonal. The page shows it scaled up, pixelated, with hover
detail (both sentences) and a click-to-zoom view.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import polars as pl

VEGA_MAX_SENTENCES = 60  # measured: above this a Vega heatmap outweighs its PNG many times

# Vega's "blues" scheme (d3 schemeBlues[9]), interpolated linearly in RGB.
BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c",
         "#08306b"]
LEVELS = 80  # color levels per tint: 3 tints x 80 + 3 blanks fit one 8-bit palette
TARGET_RGB = np.array([0xEF, 0x44, 0x44], dtype=float)  # the charts' TARGET_COLOR
TINT = 0.18  # the charts' HIGHLIGHT_OPACITY, applied once per overlay (row, column)


def _palette() -> np.ndarray:
    stops = np.array([[int(c[k:k + 2], 16) for k in (1, 3, 5)] for c in BLUES], dtype=float)
    where = np.linspace(0, len(BLUES) - 1, LEVELS)
    ramp = np.stack([np.interp(where, np.arange(len(BLUES)), stops[:, k]) for k in range(3)], axis=1)
    blank = np.array([[255.0, 255.0, 255.0]])
    tinted = [np.vstack([ramp, blank])]
    for _ in range(2):
        tinted.append(tinted[-1] * (1 - TINT) + TARGET_RGB * TINT)
    # indices: [0, LEVELS) plain ramp, LEVELS blank; then the same once and twice tinted
    return np.vstack(tinted).round().astype(np.uint8)


def heatmap_png(cells: pl.DataFrame, *, n: int, color_max: float | None,
                target_rows: list[int]) -> bytes:
    """The ``n x n`` analysed matrix as a palette PNG.

    ``cells``: columns ``r``, ``c`` (analysed indices), ``value``; ``target_rows``: the
    analysed indices of target sentences (tinted as rows and as columns).
    """
    top = color_max if color_max is not None and np.isfinite(color_max) and color_max > 0 else 1.0
    level = np.full((n, n), LEVELS, dtype=np.int64)  # blank where nothing is stored (j > i)
    if cells.height:
        values = np.clip(cells["value"].to_numpy().astype(float) / top, 0.0, 1.0)
        level[cells["r"].to_numpy(), cells["c"].to_numpy()] = np.rint(values * (LEVELS - 1))
    is_target = np.zeros(n, dtype=np.int64)
    is_target[[t for t in target_rows if 0 <= t < n]] = 1
    tints = is_target[:, None] + is_target[None, :]  # 0, 1 or 2 overlays
    pixels = (level + tints * (LEVELS + 1)).astype(np.uint8)
    return _png(pixels, _palette())


def _png(pixels: np.ndarray, palette: np.ndarray) -> bytes:
    height, width = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), pixels]).tobytes()  # filter 0 per row
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)),
        chunk(b"PLTE", palette.tobytes()),
        chunk(b"IDAT", zlib.compress(raw, 9)),
        chunk(b"IEND", b""),
    ])
