"""The sim camera's test card: a moving pattern, burned-in text, and a machine-readable stamp.

Pictures are YUV 4:2:0 arrays shaped ``(height * 3 // 2, width)`` (the Y plane, then U and V),
the layout ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes, so nothing is converted
on the way to the encoder.

The *stamp* is a grid of large black and white blocks at the bottom of the picture that encodes
the frame's wall-clock time in milliseconds, a frame counter and a checksum. Blocks are many
pixels wide so the stamp survives lossy H.264; :func:`read_stamp` reads it back from a decoded
Y plane, which is how tests prove what time a decoded frame was captured.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]

BLACK = 16  # video-range luma, so encoders do not clip it
WHITE = 235

GLYPH_W, GLYPH_H = 5, 7
# 5x7 glyphs, one hex byte per row, most significant of 5 bits = leftmost column.
_GLYPH_HEX = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C", "A": "0E1111111F1111", "B": "1E11111E11111E",
    "C": "0E11101010110E", "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E", "J": "0702020202120C",
    "K": "11121418141211", "L": "1010101010101F", "M": "111B1515111111", "N": "11111915131111",
    "O": "0E11111111110E", "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E", "V": "11111111110A04",
    "W": "1111111515150A", "X": "11110A040A1111", "Y": "1111110A040404", "Z": "1F01020408101F",
    "-": "0000001F000000", ":": "000C0C000C0C00", ".": "00000000000C0C", "/": "00010204081000",
    "_": "0000000000001F", " ": "00000000000000", "?": "0E110102040004",
}  # fmt: skip


def _glyph(hex_rows: str) -> npt.NDArray[np.bool_]:
    rows = bytes.fromhex(hex_rows)
    bits = np.unpackbits(np.frombuffer(rows, dtype=np.uint8)[:, None], axis=1)
    return bits[:, 8 - GLYPH_W :].astype(bool)


#: character -> (GLYPH_H, GLYPH_W) boolean bitmap; anything else draws as "?"
FONT: dict[str, npt.NDArray[np.bool_]] = {ch: _glyph(rows) for ch, rows in _GLYPH_HEX.items()}


def render_text(text: str, scale: int) -> npt.NDArray[np.bool_]:
    """The bitmap of ``text`` (upper-cased), one blank column between glyphs, scaled up."""
    cells = [FONT.get(ch, FONT["?"]) for ch in text.upper()]
    spaced = [np.pad(cell, ((0, 0), (0, 1))) for cell in cells]
    line = np.hstack(spaced) if spaced else np.zeros((GLYPH_H, 0), dtype=bool)
    return np.kron(line, np.ones((scale, scale), dtype=bool)).astype(bool)


def text_scale(width: int) -> int:
    return max(1, width // 320)


def wall_text(wall_ns: int) -> str:
    """Wall-clock time as burned into the picture: ``2024-05-01 12:34:56.789Z`` (UTC)."""
    seconds, rest = divmod(wall_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}Z"


# The stamp: 48 bits of wall-clock milliseconds, 24 bits of frame counter, 8 bits of checksum.
STAMP_COLUMNS, STAMP_ROWS = 20, 4
_WALL_BITS, _COUNTER_BITS = 48, 24
MIN_WIDTH, MIN_HEIGHT = 160, 120


@dataclass(frozen=True, slots=True)
class Stamp:
    wall_ms: int
    frame: int  #: frame counter modulo 2**24


@dataclass(frozen=True, slots=True)
class _StampGeometry:
    top: int
    block_w: int
    block_h: int

    @classmethod
    def of(cls, width: int, height: int) -> _StampGeometry:
        block_w = width // STAMP_COLUMNS
        block_h = max(8, block_w // 2)
        return cls(top=height - STAMP_ROWS * block_h, block_w=block_w, block_h=block_h)


def _stamp_bits(stamp: Stamp) -> npt.NDArray[np.uint8]:
    payload = (stamp.wall_ms % 2**_WALL_BITS).to_bytes(6, "big") + (
        stamp.frame % 2**_COUNTER_BITS
    ).to_bytes(3, "big")
    check = zlib.crc32(payload) & 0xFF
    raw = np.frombuffer(payload + bytes([check]), dtype=np.uint8)
    return np.unpackbits(raw).reshape(STAMP_ROWS, STAMP_COLUMNS)


def draw_stamp(luma: Plane, stamp: Stamp) -> None:
    height, width = luma.shape
    geo = _StampGeometry.of(width, height)
    blocks = np.where(_stamp_bits(stamp) == 1, WHITE, BLACK).astype(np.uint8)
    grid = np.kron(blocks, np.ones((geo.block_h, geo.block_w), dtype=np.uint8))
    luma[geo.top :, :] = BLACK
    luma[geo.top : geo.top + grid.shape[0], : grid.shape[1]] = grid


def read_stamp(luma: Plane) -> Stamp | None:
    """Read the stamp from a (decoded) Y plane; ``None`` if it is absent or its checksum fails."""
    height, width = luma.shape
    geo = _StampGeometry.of(width, height)
    # Sample the middle half of each block: its edges are where compression smears.
    bw, bh = geo.block_w, geo.block_h
    area = luma[geo.top : geo.top + STAMP_ROWS * bh, : STAMP_COLUMNS * bw].astype(np.float32)
    blocks = area.reshape(STAMP_ROWS, bh, STAMP_COLUMNS, bw)
    centre = blocks[:, bh // 4 : bh - bh // 4, :, bw // 4 : bw - bw // 4].mean(axis=(1, 3))
    raw = np.packbits((centre > (BLACK + WHITE) / 2).astype(np.uint8).ravel()).tobytes()
    payload, check = raw[:9], raw[9]
    if zlib.crc32(payload) & 0xFF != check:
        return None
    return Stamp(
        wall_ms=int.from_bytes(payload[:6], "big"), frame=int.from_bytes(payload[6:], "big")
    )


class TestCard:
    """Draws frame ``n`` of the sim camera: moving pattern, camera id, wall-clock time, stamp."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int, height: int, camera_id: str) -> None:
        self.width, self.height = width, height
        self._camera_id = camera_id
        self._scale = text_scale(width)
        rows, cols = np.mgrid[0:height, 0:width]
        self._diagonal = ((rows + cols) * 2 % 256).astype(np.uint8)
        chroma_rows, chroma_cols = np.mgrid[0 : height // 2, 0 : width // 2]
        self._chroma_u = (96 + chroma_cols * 64 // max(1, width // 2)).astype(np.uint8)
        self._chroma_v = (96 + chroma_rows * 64 // max(1, height // 2)).astype(np.uint8)
        # Grey behind the text and the stamp keeps them black and white, easy to read.
        text_bottom = self.text_origin(2)[0] // 2
        stamp_top = _StampGeometry.of(width, height).top // 2
        for chroma in (self._chroma_u, self._chroma_v):
            chroma[:text_bottom] = 128
            chroma[stamp_top:] = 128

    def draw(self, index: int, wall_ns: int) -> Plane:
        picture = np.empty((self.height * 3 // 2, self.width), dtype=np.uint8)
        luma = picture[: self.height]
        # Scroll the diagonal bars by 6 px a frame and bounce a square: motion in every frame.
        np.add(self._diagonal, np.uint8(index * 6 % 256), out=luma)
        self._draw_square(luma, index)
        self._draw_line(luma, 0, self._camera_id)
        self._draw_line(luma, 1, wall_text(wall_ns))
        draw_stamp(luma, Stamp(wall_ms=wall_ns // 1_000_000, frame=index))
        quarter = self.height // 2 * (self.width // 2)
        chroma = picture[self.height :].reshape(-1)
        chroma[:quarter] = self._chroma_u.reshape(-1)
        chroma[quarter:] = self._chroma_v.reshape(-1)
        return picture

    def text_origin(self, line: int) -> tuple[int, int]:
        """Top-left pixel (row, column) of text line ``line``; tests read the text from here."""
        pitch = (GLYPH_H + 3) * self._scale
        return (2 * self._scale + line * pitch, 2 * self._scale)

    @property
    def scale(self) -> int:
        return self._scale

    def _draw_line(self, luma: Plane, line: int, text: str) -> None:
        bitmap = render_text(text, self._scale)[:, : self.width - 4 * self._scale]
        top, left = self.text_origin(line)
        pad = self._scale
        h, w = bitmap.shape
        luma[top - pad : top + h + pad, left - pad : left + w + pad] = BLACK
        luma[top : top + h, left : left + w][bitmap] = WHITE

    def _draw_square(self, luma: Plane, index: int) -> None:
        side = self.height // 6
        span_x, span_y = self.width - side, self.height // 2 - side
        x = _bounce(index * 7, span_x)
        y = self.height // 4 + _bounce(index * 3, span_y)
        luma[y : y + side, x : x + side] = WHITE


def _bounce(position: int, span: int) -> int:
    """Position moving back and forth between 0 and ``span``."""
    if span <= 0:
        return 0
    cycle = position % (2 * span)
    return cycle if cycle < span else 2 * span - cycle
