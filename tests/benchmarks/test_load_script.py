"""Keeps the loopback load script working: a tiny bounded run, every answer a Quote."""

import importlib.util
from pathlib import Path

from helpers import installed_beside_the_built_ins


def test_load_script_runs_bounded_on_loopback(monkeypatch):
    # The gateway runs in a subprocess, discovering what is installed: it gets the built-ins.
    monkeypatch.setenv("BILLING_GATEWAY_DISABLED_PLUGINS", ",".join(installed_beside_the_built_ins()))
    spec = importlib.util.spec_from_file_location("load_quote", Path(__file__).with_name("load_quote.py"))
    load_quote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_quote)
    figures = load_quote.run(requests=40, concurrency=4, seconds=20, database_url=None)
    assert figures["requests"] == 40
    assert figures["failures"] == 0
