"""Profile pictures: any photo a phone sends, re-encoded into a small safe image.

Re-encoding (rather than storing what was sent) strips metadata such as the
GPS position in a photo's EXIF, defuses malformed files, and keeps every
picture small for old phones on a busy hotspot.

Decoding is the expensive part (a 40-megapixel PNG of 132 KB took over a
second), so pixels are capped at what a phone camera makes, and JPEG, the
phones' own format, is decoded straight at a reduced scale. The caller runs
`reencode` off the event loop (`Box.run_blocking`).
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 256
MAX_UPLOAD = 8 * 1024 * 1024
# A 12-megapixel phone photo (4032 x 3024): the most a PNG, WebP or GIF may have.
MAX_PIXELS = 4032 * 3024
# JPEG is decoded at 1/2 to 1/8 scale (libjpeg's DCT scaling, Pillow's draft
# mode), so a 24-megapixel phone photo costs less than a 12-megapixel PNG.
MAX_JPEG_PIXELS = 25_000_000
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


class AvatarError(ValueError):
    """A picture that cannot be used; the message is for people."""


def pixel_limit(image_format: str | None) -> int:
    return MAX_JPEG_PIXELS if image_format == "JPEG" else MAX_PIXELS


def reencode(data: bytes) -> bytes:
    """A square WebP picture of at most SIZE x SIZE from an uploaded image."""
    if not data:
        raise AvatarError("The picture is empty.")
    if len(data) > MAX_UPLOAD:
        raise AvatarError("The picture is too big (at most 8 MB).")
    # Pillow refuses "decompression bombs" above twice this while opening,
    # before our own, lower limits below are checked.
    Image.MAX_IMAGE_PIXELS = MAX_JPEG_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise AvatarError("Use a JPEG, PNG, WebP or GIF picture.")
            limit = pixel_limit(image.format)
            if image.width * image.height > limit:
                raise AvatarError(_too_many_pixels(image.format))
            image.seek(0)
            if image.format == "JPEG":
                image.draft("RGB", (SIZE, SIZE))
            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
        if isinstance(e, Image.DecompressionBombError):
            raise AvatarError(_too_many_pixels(None)) from None
        raise AvatarError("That file is not a picture the box can read.") from None
    picture = ImageOps.fit(picture, (SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def _too_many_pixels(image_format: str | None) -> str:
    if image_format == "JPEG":
        return "The picture has too many pixels (a JPEG may have at most 25 megapixels)."
    return ("The picture has too many pixels (at most 12 megapixels, 4032 × 3024, "
            "or 25 megapixels as a JPEG).")
