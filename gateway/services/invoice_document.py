"""An invoice as a PDF: what an EU accountant looks for, on one A4 page (more if the lines need it).

Rendered with fpdf2, pure Python and offline, from the invoice's read model alone: the seller
and the buyer as they were on the invoice date, the number, the dates and the period, each
line with its quantity and unit price, each tax line with its note (reverse charge, not subject
to EU VAT), the totals, the payment status and the method. Amounts are the invoice's exact
Decimals, printed as stored: no float is involved anywhere.

The text is set in DejaVu Sans, shipped in ``gateway/data/fonts`` (Bitstream Vera licence,
beside the files), so names such as "Köln" or "Łódź" print whatever fonts the host has;
fpdf2 embeds only the glyphs used. Rendering reads no database: the caller reads the invoice,
lets its connection go, then renders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib.resources import as_file, files
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from gateway.core.seller import Seller
from gateway.core.statuses import InvoiceStatus
from gateway.core.tax import TaxTreatment
from gateway.services.billing_views import InvoiceLineView, InvoiceView, payment_method_label

_FONT = "DejaVu"
_GREY = (90, 90, 90)
_RED = (170, 20, 20)
_WIDTH = 174.0  # mm between the 18 mm margins of an A4 page


def render(invoice: InvoiceView) -> bytes:
    """The invoice as a PDF document."""
    pdf = _Document(invoice)
    pdf.render()
    return bytes(pdf.output())


@lru_cache(maxsize=1)
def country_names() -> Mapping[str, str]:
    """ISO 3166-1 alpha-2 code → English short name, from the gateway's data file."""
    text = files("gateway").joinpath("data", "countries.tsv").read_text(encoding="utf-8")
    names: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _, name = line.partition("\t")
            names[code] = name
    return names


def _country(code: str | None) -> str | None:
    return None if code is None else country_names().get(code, code)


def amount(value: Decimal, currency: str) -> str:
    """``1234.5`` as stored → "1,234.50 EUR": every digit of the Decimal kept, none added by a float."""
    return f"{value:,f} {currency}"


def _date(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def seller_lines(seller: Seller) -> list[str]:
    lines = [*seller.address]
    country = _country(seller.country)
    if country is not None and country not in lines:
        lines.append(country)
    if seller.vat_id:
        lines.append(f"VAT ID: {seller.vat_id}")
    if seller.email:
        lines.append(seller.email)
    return lines


def buyer_lines(billing: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The buyer's heading (the company, else the person) and the lines below it, from the
    billing details as invoiced."""
    company, person = billing.get("company_name"), billing.get("name")
    heading = company or person or "(no billing details were saved)"
    lines: list[str] = []
    if company and person:
        lines.append(f"Attn. {person}")
    for field in ("address_line1", "address_line2"):
        if billing.get(field):
            lines.append(str(billing[field]))
    city = " ".join(str(billing[f]) for f in ("postal_code", "city") if billing.get(f))
    if city:
        lines.append(city)
    if billing.get("region"):
        lines.append(str(billing["region"]))
    if country := _country(billing.get("country")):
        lines.append(country)
    if billing.get("vat_id"):
        lines.append(f"VAT ID: {billing['vat_id']}")
    if billing.get("email"):
        lines.append(str(billing["email"]))
    return heading, lines


def _unit_price(line: InvoiceLineView) -> str:
    """As invoiced (sub-cent prices keep their digits); a line of one without a stored unit
    price (the plan's base price) costs its amount."""
    if line.unit_price is not None:
        return f"{line.unit_price:,f}"
    return f"{line.amount:,f}" if line.quantity == 1 else ""


class _Document(FPDF):
    def __init__(self, invoice: InvoiceView) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.invoice = invoice
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=22)
        with as_file(files("gateway").joinpath("data", "fonts")) as fonts:
            self.add_font(_FONT, "", fonts / "DejaVuSans.ttf")
            self.add_font(_FONT, "B", fonts / "DejaVuSans-Bold.ttf")
        seller = invoice.seller
        self.set_title(f"Invoice {invoice.number}")
        self.set_author(seller.name if seller is not None else "")
        self.set_creator("billing-gateway")
        self.set_creation_date(invoice.issued_at)  # the same invoice renders the same bytes

    def footer(self) -> None:
        self.set_y(-15)
        self._font(7, colour=_GREY)
        self.cell(0, 4, f"{self.invoice.number} · page {self.page_no()}/{{nb}}", align=Align.C)

    def _font(self, size: float, *, bold: bool = False, colour: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.set_font(_FONT, "B" if bold else "", size)
        self.set_text_color(*colour)

    def _line(self, text: str, height: float = 4.6, width: float = 0) -> None:
        self.multi_cell(width, height, text, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def render(self) -> None:
        invoice = self.invoice
        self.alias_nb_pages()
        self.add_page()
        self._font(20, bold=True)
        self.cell(0, 10, "Invoice", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if invoice.seller is None or invoice.seller.demo:
            self._font(9, bold=True, colour=_RED)
            self._line(
                "DEMO: issued with the gateway's placeholder seller identity. Not a valid invoice."
                if invoice.seller is not None
                else "Issued before the gateway recorded the seller's identity on invoices."
            )
        self.ln(3)
        top = self.get_y()
        self._parties(top)
        self._facts(top)
        self.ln(6)
        self._lines()
        self._totals()
        self._notes()

    def _block(
        self, x: float, y: float, width: float, title: str, heading: str, lines: Iterable[str]
    ) -> float:
        self.set_xy(x, y)
        self._font(8, colour=_GREY)
        self.cell(width, 4.5, title.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
        self._font(10, bold=True)
        self.multi_cell(width, 5, heading, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
        self._font(9)
        for line in lines:
            self.multi_cell(width, 4.6, line, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
        return self.get_y()

    def _parties(self, top: float) -> None:
        seller = self.invoice.seller
        seller_end = self._block(
            self.l_margin,
            top,
            95,
            "From",
            seller.name if seller is not None else "(seller not recorded)",
            seller_lines(seller) if seller is not None else [],
        )
        heading, lines = buyer_lines(self.invoice.billing)
        buyer_end = self._block(self.l_margin, seller_end + 5, 95, "Bill to", heading, lines)
        self._bottom = buyer_end

    def _facts(self, top: float) -> None:
        invoice = self.invoice
        facts = [("Invoice number", invoice.number), ("Invoice date", _date(invoice.issued_at))]
        if invoice.period_start is not None and invoice.period_end is not None:
            facts.append(("Service period", f"{_date(invoice.period_start)} – {_date(invoice.period_end)}"))
        status = "Paid" if invoice.status == InvoiceStatus.PAID else "Open: payment due"
        facts.append(("Status", status))
        method = payment_method_label(invoice.payment)
        if method is not None:
            facts.append(("Paid with", method))
        facts.append(("Currency", invoice.currency))
        y = top
        for label, value in facts:
            self.set_xy(118, y)
            self._font(8, colour=_GREY)
            self.cell(26, 5, label)
            self._font(9, bold=label == "Invoice number")
            self.multi_cell(48, 5, value, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
            y = self.get_y()
        self.set_xy(self.l_margin, max(y, self._bottom))

    def _lines(self) -> None:
        invoice = self.invoice
        currency = invoice.currency
        self._font(8.5, bold=True)
        widths = (84.0, 22.0, 32.0, 36.0)
        headings = ("Description", "Quantity", f"Unit price ({currency})", f"Amount ({currency})")
        with self.table(
            col_widths=widths,
            width=_WIDTH,
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
            line_height=5,
            borders_layout="HORIZONTAL_LINES",
            first_row_as_headings=True,
        ) as table:
            table.row(headings)
            self._font(8.5)
            for line in invoice.lines:
                description = line.description
                if line.price_version is not None:
                    description += f"\nprice version {line.price_version}"
                table.row((description, f"{line.quantity:,}", _unit_price(line), f"{line.amount:,f}"))
        self.ln(3)

    def _total_row(self, label: str, value: str, *, bold: bool = False) -> None:
        self._font(9.5 if bold else 9, bold=bold)
        self.set_x(self.l_margin + 84)
        self.cell(54, 5.5, label)
        self.cell(36, 5.5, value, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _totals(self) -> None:
        invoice = self.invoice
        currency = invoice.currency
        self._total_row("Subtotal (net)", amount(invoice.subtotal.amount, currency))
        for tax in invoice.tax_lines:
            if tax.treatment is TaxTreatment.OUT_OF_SCOPE:
                self._total_row(tax.name, "–")
            else:
                self._total_row(f"{tax.name} on {tax.base:,f}", amount(tax.amount, currency))
        self._total_row("Total", amount(invoice.total.amount, currency), bold=True)
        if invoice.status == InvoiceStatus.PAID:
            self._total_row("Amount due", amount(Decimal(0).quantize(invoice.total.amount), currency))
        else:
            self._total_row("Amount due", amount(invoice.total.amount, currency), bold=True)

    def _notes(self) -> None:
        notes = [tax.note for tax in self.invoice.tax_lines if tax.note]
        if not notes:
            return
        self.ln(5)
        self._font(8, colour=_GREY)
        self.cell(0, 4.5, "NOTES", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self._font(9)
        for note in notes:
            self._line(note)
