"""Invoice PDFs: where they are served, what they are called, and rendering them.

The renderer (:mod:`gateway.services.invoice_document`, fpdf2 with its fonts and image
libraries) is imported on the first invoice rendered, not when the server starts: it is about
40 MiB of a process that may never render one.
"""

from __future__ import annotations

from gateway.services.billing_views import InvoiceView

MEDIA_TYPE = "application/pdf"


def pdf_path(invoice_id: str) -> str:
    """Where the server serves an invoice's PDF (``GET``, with the workspace's API key)."""
    return f"/invoices/{invoice_id}.pdf"


def file_name(invoice: InvoiceView) -> str:
    return f"{invoice.number}.pdf"


def render_invoice(invoice: InvoiceView) -> bytes:
    """The invoice as a PDF document."""
    from gateway.services import invoice_document  # fpdf2: loaded when first needed

    return invoice_document.render(invoice)
