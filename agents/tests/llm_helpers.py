"""Shared helpers for the LLM-layer tests: fast retry settings and a tiny text PDF."""

from __future__ import annotations


def fast_retries(settings, *, retries: int = 3) -> None:
    """Retries with millisecond delays, so retry tests stay quick."""
    settings.LLM_MAX_RETRIES = retries
    settings.LLM_RETRY_BASE_DELAY_SECONDS = 0.001
    settings.LLM_RETRY_MAX_DELAY_SECONDS = 0.01
    settings.LLM_RETRY_MAX_SECONDS = 10.0
    settings.LLM_REQUEST_TIMEOUT_SECONDS = 10.0


def text_pdf(*lines: str) -> bytes:
    """A valid one-page PDF whose text layer holds `lines` (Helvetica)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    drawing = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({escape(x)}) Tj T*" for x in lines)
    stream = (drawing + " ET").encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    document = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(document)
