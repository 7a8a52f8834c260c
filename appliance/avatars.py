"""Profile pictures: any photo a phone sends, re-encoded into a small safe image.

Re-encoding (rather than storing what was sent) strips metadata such as the
GPS position in a photo's EXIF, defuses malformed files, and keeps every
picture small for old phones on a busy hotspot.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 256
MAX_UPLOAD = 8 * 1024 * 1024
# Refuse "decompression bombs": tiny files that expand to huge bitmaps.
MAX_PIXELS = 40_000_000


class AvatarError(ValueError):
    """A picture that cannot be used; the message is for people."""


def reencode(data: bytes) -> bytes:
    """A square WebP picture of at most SIZE x SIZE from an uploaded image."""
    if not data:
        raise AvatarError("The picture is empty.")
    if len(data) > MAX_UPLOAD:
        raise AvatarError("The picture is too big (at most 8 MB).")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "BMP"):
                raise AvatarError("Use a JPEG, PNG, WebP or GIF picture.")
            if image.width * image.height > MAX_PIXELS:
                raise AvatarError("The picture has too many pixels.")
            image.seek(0)
            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
        if isinstance(e, Image.DecompressionBombError):
            raise AvatarError("The picture has too many pixels.") from None
        raise AvatarError("That file is not a picture the box can read.") from None
    picture = ImageOps.fit(picture, (SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()
