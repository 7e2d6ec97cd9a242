"""The plugin conformance kit (gateway/testing), run as a partner runs it, through pytester:
the built-in plugins pass it, broken payment methods fail it with a readable message, and
without ``--conformance-plugin`` it skips every test and says how to use the option."""

from __future__ import annotations

import textwrap

import pytest

KIT = ("-p", "no:cacheprovider", "-rfEs", "--pyargs", "gateway.testing.conformance")
# What the built-in plugins are known not to do yet, as the test ids that fail.
KNOWN_GAPS: dict[str, list[str]] = {}


def run_kit(pytester: pytest.Pytester, *plugins: str) -> pytest.RunResult:
    return pytester.runpytest(*KIT, *(f"--conformance-plugin={plugin}" for plugin in plugins))


def failed_tests(result: pytest.RunResult) -> list[str]:
    return sorted(
        line.split("::")[-1].split(" - ")[0] for line in result.outlines if line.startswith("FAILED ")
    )


@pytest.mark.parametrize(
    "plugin",
    ["payment_balance", "billing_gateway_payment_card", "payment_card", "tax_vat", "messaging_rates"],
)
def test_a_built_in_plugin_passes_the_kit(pytester: pytest.Pytester, plugin: str) -> None:
    result = run_kit(pytester, plugin)
    outcomes = result.parseoutcomes()
    assert failed_tests(result) == KNOWN_GAPS.get(plugin.removeprefix("billing_gateway_"), []), (
        result.stdout.str()
    )
    assert outcomes.get("passed", 0) > 0
    assert "error" not in outcomes and "errors" not in outcomes


def test_without_a_plugin_every_test_skips_saying_how_to_use_the_option(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester)
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK
    assert outcomes["skipped"] > 0 and set(outcomes) == {"skipped"}
    result.stdout.fnmatch_lines(["*--conformance-plugin=MODULE_OR_ENTRY_POINT_NAME*"])
    # said once at the end too, for a run without -rs
    assert pytester.runpytest(*KIT[:2], *KIT[3:]).stdout.lines[-2].startswith("conformance kit: ")


def test_a_suite_with_no_provider_of_its_kind_skips_saying_so(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "tax_vat")
    result.stdout.fnmatch_lines(["*no payment method is registered by the plugins checked (tax_vat)*"])


BROKEN = """
from gateway.plugin_api import Capability, FailureCode, PaymentResult, PaymentStatus, hookimpl


class Broken:
    code = "broken"
    label = "Broken"
    capabilities = CAPABILITIES

    def charge(self, request, ledger):
        CHARGE

    def status(self, request, reference, ledger):
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def confirm(self, request, reference, response):
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)

    def cancel(self, request, reference, ledger):
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.CANCELED)

    def refund(self, request, reference, amount, key, ledger):
        return PaymentResult(PaymentStatus.FAILED, failure=FailureCode.PROCESSING_ERROR)


@hookimpl
def register_payment_methods(register):
    register(Broken())
"""


def broken_plugin(pytester: pytest.Pytester, capabilities: str, charge: str) -> str:
    source = BROKEN.replace("CAPABILITIES", capabilities).replace("CHARGE", textwrap.dedent(charge).strip())
    pytester.makepyfile(broken_payment_plugin=source)
    pytester.syspathinsert()
    return "broken_payment_plugin"


def test_a_method_that_charges_twice_for_one_key_fails(pytester: pytest.Pytester) -> None:
    plugin = broken_plugin(
        pytester,
        "frozenset({Capability.PAY_NOW, Capability.PREPAID_BALANCE})",
        # a new ledger key per call: the balance is spent again on every retry
        "import secrets\n"
        "        entry = ledger.debit(request.amount, request.idempotency_key + secrets.token_hex(4), 'x')\n"
        "        return PaymentResult(PaymentStatus.SUCCEEDED, reference=entry)",
    )
    result = run_kit(pytester, plugin)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "test_the_same_key_twice_gives_the_same_answer_and_moves_money_once[broken-pay]" in failed_tests(
        result
    )
    result.stdout.fnmatch_lines(["*AssertionError: the same key answered PaymentResult(*"])


def test_a_method_that_answers_pending_without_settle_later_fails(pytester: pytest.Pytester) -> None:
    plugin = broken_plugin(
        pytester,
        "frozenset({Capability.PAY_NOW})",
        "return PaymentResult(PaymentStatus.PENDING, reference='p-' + request.idempotency_key)",
    )
    result = run_kit(pytester, plugin)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "test_a_fresh_charge_answers_only_what_the_capabilities_allow[broken]" in failed_tests(result)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: charge answered PENDING, which *PAY_NOW* do not allow (allowed: FAILED, SUCCEEDED)"
        ]
    )


def test_a_method_that_breaks_the_registry_contract_stops_the_run_as_the_server_would(
    pytester: pytest.Pytester,
) -> None:
    plugin = broken_plugin(
        pytester, "{Capability.PAY_NOW}", "return PaymentResult(PaymentStatus.SUCCEEDED, reference='r')"
    )
    result = run_kit(pytester, plugin)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*conformance: plugin 'broken_payment_plugin' registered payment method 'broken' whose "
            "`capabilities` is not a frozenset of Capability*"
        ]
    )


def test_an_unknown_plugin_name_is_a_usage_error_listing_the_entry_points(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "no_such_plugin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'no_such_plugin' is neither an entry point of the 'billing_gateway' group*"]
    )


def test_the_pytest_plugin_leaves_other_runs_alone(pytester: pytest.Pytester) -> None:
    """Installed with the gateway, it loads into every pytest run: a suite of its own with
    arguments named like the kit's gets its own fixtures, untouched."""
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef payment_method():\n    return 'mine'\n")
    pytester.makepyfile(test_mine="def test_mine(payment_method):\n    assert payment_method == 'mine'\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--conformance-plugin=payment_balance")
    result.assert_outcomes(passed=1)
    assert "billing_gateway" in pytester.runpytest("--help").stdout.str()
