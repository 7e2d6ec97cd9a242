"""Pay by credit card: saved cards or a new card."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.hookspecs import hookimpl


@dataclass(frozen=True)
class CardPaymentMethod:
    code: str = "card"
    label: str = "Credit card"


@hookimpl
def register_payment_methods(register):
    register(CardPaymentMethod())
