"""An optional VIES check of EU VAT IDs: a ``TaxIdVerifier`` registered with ``BILLING_GATEWAY_VIES=on``.

VIES, the EU's VAT Information Exchange System, says whether a VAT ID is issued by its
member state, which a checksum cannot. The gateway asks it when billing details with an EU
VAT ID are saved (never on the quote path, never inside a database transaction) and keeps
the answer on the billing details.

The request is the VIES REST ``check-vat-number`` call: ``POST`` to
``BILLING_GATEWAY_VIES_URL`` (default the European Commission's endpoint) with
``{"countryCode": "DE", "vatNumber": "136695976"}``; the answer's ``valid`` says whether
the number is registered. Python's standard library makes the call (``urllib``, honouring
the usual proxy variables), with ``BILLING_GATEWAY_VIES_TIMEOUT`` seconds (default 5) to
connect and for each read.

Answers:

* ``valid: true``: VERIFIED.
* ``valid: false`` (``userError`` ``INVALID`` or none): REJECTED, "not registered in VIES";
  the customer sees it on the VAT ID field and nothing is saved.
* No answer (a timeout, a refused connection, an HTTP error, a reply that is not JSON) or
  VIES reporting itself or the member state unavailable (``MS_UNAVAILABLE``, ``TIMEOUT``,
  ``SERVICE_UNAVAILABLE``, ``MS_MAX_CONCURRENT_REQ``, ...): the **fallback**,
  ``BILLING_GATEWAY_VIES_FALLBACK``:

  - ``accept`` (the default): UNVERIFIED. The ID, which passed the offline format and
    checksum check, is saved and marked unverified; it is sent to VIES again when the
    customer saves it again. Tax is computed as without VIES, so an outage never blocks
    a customer; an operator can list unverified IDs (``vat_id_status``) to follow up.
  - ``refuse``: REJECTED, "cannot be checked with VIES now; try again later". Safer for reverse
    charge, but customers cannot save an EU VAT ID while VIES or their state is down.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from billing_gateway_tax_vat.config import ViesFallback
from billing_gateway_tax_vat.rules import MEMBER_STATES, normalize_vat_id
from gateway.plugin_api import InvalidTaxId, TaxIdCheck, TaxIdStatus

_MAX_ANSWER = 64 * 1024  # a VIES answer is a few hundred bytes; never read an unbounded body
_NOT_REGISTERED = {None, "VALID", "INVALID"}  # with valid: false, these mean "not registered"

NOT_REGISTERED = "is not registered in VIES, the EU's VAT ID register"
UNAVAILABLE = "cannot be checked with VIES now; try again later"


class ViesVerifier:
    """Checks EU VAT IDs with VIES. Keeps no state between calls, so safe to share between threads."""

    code = "vies"
    countries = MEMBER_STATES

    def __init__(self, url: str, timeout: float, fallback: ViesFallback = ViesFallback.ACCEPT) -> None:
        self.url = url
        self.timeout = timeout
        self.fallback = fallback

    def verify(self, tax_id: str, country: str) -> TaxIdCheck:
        try:
            vat_id = normalize_vat_id(tax_id, country)  # "EL094259216": VIES uses the VAT prefix
        except InvalidTaxId as error:  # the gateway sends well-formed IDs only; be safe anyway
            return TaxIdCheck(TaxIdStatus.REJECTED, error.reason)
        try:
            answer = self._ask(vat_id[:2], vat_id[2:])
        except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, bad JSON
            return self._unavailable(f"no answer from VIES: {type(error).__name__}: {error}")
        valid, user_error = answer.get("valid"), answer.get("userError")
        if valid is True:
            return TaxIdCheck(TaxIdStatus.VERIFIED)
        if valid is False and user_error in _NOT_REGISTERED:
            return TaxIdCheck(TaxIdStatus.REJECTED, NOT_REGISTERED)
        return self._unavailable(f"VIES answered {user_error or 'without a verdict'}")

    def _ask(self, country_code: str, number: str) -> dict[str, Any]:
        body = json.dumps({"countryCode": country_code, "vatNumber": number}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer = json.loads(response.read(_MAX_ANSWER))
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
        return answer

    def _unavailable(self, why: str) -> TaxIdCheck:
        if self.fallback is ViesFallback.REFUSE:
            return TaxIdCheck(TaxIdStatus.REJECTED, UNAVAILABLE)
        return TaxIdCheck(TaxIdStatus.UNVERIFIED, why)
