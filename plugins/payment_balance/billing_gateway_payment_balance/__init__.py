"""Pay from the workspace's prepaid balance ("My balance" on the Checkout page)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.hookspecs import hookimpl


@dataclass(frozen=True)
class BalancePaymentMethod:
    code: str = "balance"
    label: str = "My balance"


@hookimpl
def register_payment_methods(register):
    register(BalancePaymentMethod())
