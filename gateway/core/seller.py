"""The seller: who issues the invoices, as an EU invoice must name it.

The identity comes from configuration (``BILLING_GATEWAY_SELLER_*``) and each invoice keeps a
copy of it as it was on the invoice date (:meth:`Seller.snapshot`), as it keeps the buyer's
billing details: changing the configuration later changes no invoice already issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.numbering import INVOICE_SERIES


@dataclass(frozen=True, slots=True)
class Seller:
    name: str  # the legal name, e.g. "Example Messaging GmbH"
    address: tuple[str, ...]  # the postal address, one printed line each
    country: str  # ISO 3166-1 alpha-2, where the seller is established (for tax too)
    vat_id: str | None = None  # as printed, e.g. "DE136695976"; None when not registered
    email: str | None = None  # where customers write about invoices
    demo: bool = False  # the built-in placeholder identity: invoices say they are not valid
    invoice_series: str = INVOICE_SERIES  # the prefix of this seller's invoice numbers

    def snapshot(self) -> dict[str, Any]:
        """The identity as stored on an invoice (JSON); the series shows in the invoice's number."""
        return {
            "name": self.name,
            "address": list(self.address),
            "country": self.country,
            "vat_id": self.vat_id,
            "email": self.email,
            "demo": self.demo,
        }

    @classmethod
    def from_snapshot(cls, stored: Mapping[str, Any]) -> Seller:
        return cls(
            name=stored["name"],
            address=tuple(stored.get("address") or ()),
            country=stored["country"],
            vat_id=stored.get("vat_id"),
            email=stored.get("email"),
            demo=bool(stored.get("demo", False)),
        )


def demo_seller(country: str, invoice_series: str = INVOICE_SERIES) -> Seller:
    """The placeholder identity ``billing-gateway serve --demo`` runs with until the operator
    configures a real one; every invoice issued with it is marked as a demo."""
    return Seller(
        name="Demo Seller (set BILLING_GATEWAY_SELLER_NAME)",
        address=("Set BILLING_GATEWAY_SELLER_ADDRESS",),
        country=country,
        vat_id=None,
        email=None,
        demo=True,
        invoice_series=invoice_series,
    )
