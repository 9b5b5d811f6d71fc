"""Decoding images with a budget: the size is read from the header before any pixel is decoded.

A 2.6 MB PNG can declare 30000 x 30000 pixels: decoded, that is 2.7 GB of BGR and a
swap storm on a laptop, and OpenCV raises `cv2.error` past its own 2^30-pixel limit.
`image_dimensions` reads width and height from the header (PNG, JPEG, BMP, WebP, TIFF),
so `decode_image` refuses an image above the cap (`camera.max_image_mp`) with a named
error before decoding, and turns any decoder failure into the caller's error class.
"""

from __future__ import annotations

import struct

import numpy as np

MAX_IMAGE_BYTES = 256 << 20  # no photo is this big; a device or a runaway file is not read whole


def _jpeg(data: bytes) -> tuple[int, int] | None:
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        pos += 2 + length
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    end = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[ifd:ifd + 2])
        dims = {}
        for i in range(min(count, 512)):
            off = ifd + 2 + 12 * i
            tag, kind = struct.unpack(end + "HH", data[off:off + 4])
            if tag in (256, 257):
                fmt = end + ("H" if kind == 3 else "I")
                dims[tag] = struct.unpack(fmt, data[off + 8:off + 8 + struct.calcsize(fmt)])[0]
        return (dims[256], dims[257]) if len(dims) == 2 else None
    except (struct.error, KeyError):
        return None


def image_dimensions(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG/JPEG/BMP/WebP/TIFF; None when not recognised."""
    data = bytes(data[:1 << 16])  # headers (JPEG's EXIF included) sit in the first 64 KiB
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                (bits,) = struct.unpack("<I", data[21:25])
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)
    except struct.error:
        return None
    return None


def decode_image(data: bytes, what: str, max_mp: float, error: type) -> np.ndarray:
    """BGR uint8 pixels of `data`, or `error` (a LivecamError class) naming `what` and the fix.

    Refused before decoding when the header declares more than `max_mp` megapixels; any
    decoder failure (`cv2.error`, MemoryError) is the same named error, never a traceback.
    """
    import cv2

    limit = max_mp * 1e6
    dims = image_dimensions(data)
    fix = ("downscale it (e.g. to 4000 px on the long side), or raise the limit with "
           f"--set camera.max_image_mp=N (now {max_mp:g})")
    if dims is not None and dims[0] * dims[1] > limit:
        raise error(f"{what}: {dims[0]}x{dims[1]} pixels ({dims[0] * dims[1] / 1e6:.0f} MP) is above the "
                    f"{max_mp:g} MP limit; not decoded", fix)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if len(data) else None
    except (cv2.error, MemoryError) as exc:
        raise error(f"{what}: cannot be decoded ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:160]})",
                    fix) from None
    if img is None:
        raise error(f"{what}: not a readable image", "use a JPEG, PNG, WebP or BMP image")
    if img.shape[0] * img.shape[1] > limit:  # a header it did not recognise
        raise error(f"{what}: {img.shape[1]}x{img.shape[0]} pixels is above the {max_mp:g} MP limit", fix)
    return img


def read_image_file(path, what: str, max_mp: float, error: type) -> np.ndarray:
    """`decode_image` of a regular file of at most MAX_IMAGE_BYTES (a device or a FIFO is refused by name)."""
    import os
    import stat

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what}: not a regular file", "pass an image file")
        if st.st_size > MAX_IMAGE_BYTES:
            raise error(f"{what}: {st.st_size / 1e6:.0f} MB is too big for an image", "use a smaller image")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise error(f"{what}: cannot read the file ({exc.strerror or exc})",
                    "check the path and its permissions") from exc
    return decode_image(data, what, max_mp, error)
