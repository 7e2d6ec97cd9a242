"""GraphQL requests served in worker threads are at most ``BILLING_GATEWAY_REQUEST_THREADS`` at
once per server process (gateway.server.http.GraphQLEndpoint._limiter); the others wait their
turn and are all answered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.server.http import GraphQLEndpoint
from gateway.server.settings import Settings, SettingsError

PLANS = {"query": "{ plans { code } }"}  # no key: served in a worker thread


@pytest.fixture
def settings(database_url):
    return Settings.from_env({"BILLING_GATEWAY_REQUEST_THREADS": "2"}, database_url=database_url)


def test_at_most_the_configured_requests_work_at_once(client, monkeypatch):
    real = GraphQLEndpoint._serve
    lock = threading.Lock()
    active, peak = [0], [0]

    def counting(self, *args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)  # long enough for the others to arrive
            return real(self, *args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(GraphQLEndpoint, "_serve", counting)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/graphql", json=PLANS), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert all(a.json()["data"]["plans"] for a in answers)
    assert peak[0] == 2


def test_the_setting_is_a_whole_number_from_1_to_1000(database_url):
    assert Settings.from_env({}, database_url=database_url).request_threads >= 8
    for wrong in ("0", "1001", "two", "-3"):
        with pytest.raises(SettingsError, match="REQUEST_THREADS"):
            Settings.from_env({"BILLING_GATEWAY_REQUEST_THREADS": wrong}, database_url=database_url)
