"""The operator CLI: workspaces, keys and start-up errors."""

from __future__ import annotations

import re

import pytest

from gateway.server.cli import main


def test_create_workspace_prints_a_key_that_works(cli_env, capsys, graphql):
    assert (
        main(
            [
                "create-workspace",
                "Acme",
                "--plan",
                "omnichannel",
                "--email-credits",
                "50000",
                "--messaging-credits",
                "20000",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    key = re.search(r"api key: (\S+)", out).group(1)
    workspace_id = re.search(r"workspace: (\S+)", out).group(1)
    data = graphql(
        "{ workspace { ... on Workspace { id plan { code } emailCredits messagingCredits } } }", key=key
    )
    assert data["workspace"] == {
        "id": workspace_id,
        "plan": {"code": "omnichannel"},
        "emailCredits": 50000,
        "messagingCredits": 20000,
    }

    assert main(["create-key", workspace_id]) == 0
    second = re.search(r"api key: (\S+)", capsys.readouterr().out).group(1)
    assert second != key
    assert graphql("{ workspace { ... on Workspace { id } } }", key=second)["workspace"]["id"] == workspace_id


def test_revoke_key_stops_it_working(cli_env, capsys, graphql, make_workspace):
    member = make_workspace()
    assert graphql("{ workspace { __typename } }", key=member.key)["workspace"]["__typename"] == "Workspace"
    prefix = member.key.split("_")[1]
    assert main(["revoke-key", prefix]) == 0
    assert f"revoked key {prefix}" in capsys.readouterr().out
    answer = graphql("{ workspace { ... on UserError { code message } } }", key=member.key)["workspace"]
    assert answer == {"code": "AUTHENTICATION_REQUIRED", "message": "the API key is not valid"}
    assert main(["revoke-key", member.key]) == 2  # already revoked
    # Named by its prefix: the secret part of a key typed on the command line is not printed.
    assert capsys.readouterr().err == f"error: no active API key 'bgw_{prefix}'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-workspace", "Acme", "--plan", "platinum"], "unknown plan 'platinum'"),
        (
            ["create-workspace", "Acme", "--plan", "email", "--email-credits", "7"],
            "email credits must be between",
        ),
        (["create-workspace", "Acme", "--plan", "custom"], "sold by quote"),
        (["create-key", "no-such-workspace"], "no workspace 'no-such-workspace'"),
    ],
)
def test_cli_refuses_bad_input_and_writes_nothing(cli_env, capsys, gateway, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err
    with gateway.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM workspaces").scalar() == 0


def test_a_broken_catalog_stops_start_up_naming_file_plan_and_field(cli_env, capsys, tmp_path, monkeypatch):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        'currency = "EUR"\ndefault_plan = "free"\nsales_contact = "s@x"\n'
        '[[plans]]\ncode = "free"\nname = "Free"\ntier = 0\nchannels = ["email"]\n'
        "base_price = 0.0\nadjustable = false\n"
    )
    monkeypatch.setenv("BILLING_GATEWAY_CATALOG", str(catalog))
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "cannot start" in err and str(catalog) in err and "plan 'free'" in err and "'base_price'" in err


def test_a_missing_plugin_setting_stops_start_up(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_TAX_CALCULATOR", "avalara")
    assert main(["migrate"]) == 2
    assert (
        "BILLING_GATEWAY_TAX_CALCULATOR names 'avalara', which no plugin registered "
        "(loaded tax calculators: vat)" in capsys.readouterr().err
    )


def test_a_disabled_tax_plugin_is_an_explicit_start_up_error(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_DISABLED_PLUGINS", "tax_vat")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "0 tax calculators are loaded" in err and "set BILLING_GATEWAY_TAX_CALCULATOR" in err
    assert "(loaded tax calculators: none)" in err


def test_a_seller_country_the_tax_calculator_cannot_serve_stops_start_up(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("BILLING_GATEWAY_SELLER_COUNTRY", "US")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "cannot tax for seller country 'US' (BILLING_GATEWAY_SELLER_COUNTRY)" in err
