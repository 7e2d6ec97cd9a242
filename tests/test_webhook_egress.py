"""The webhook egress policy: what tenants' webhook URLs may reach, checked at registration and
at every send on that send's own DNS answer, and what a tenant learns of a failed attempt.

DNS is the policy's resolver, replaced here by a table (the machine's resolver knows no test
names); every connection goes to a receiver on 127.0.0.1, which these tests allow explicitly
where they mean to reach it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Iterator

import pytest

from gateway.events import delivery as webhook_delivery
from gateway.events import endpoints
from gateway.events.egress import GENERIC_REFUSAL, EgressPolicy
from gateway.events.outbox import EventType, emit
from gateway.server.settings import Settings, SettingsError
from gateway.storage.db import Delivery, DeliveryAttempt
from gateway.storage.locks import lock_workspace

from receivers import Receiver, receivers


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The operator's allow-list is empty: the policy as shipped. No background worker.
    return Settings(database_url=database_url, delivery_interval=0, webhook_timeout=2)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from receivers()


class FakeDns:
    """The policy's resolver: answers from ``table`` (a name to its addresses), and counts lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError(-2, "Name or service not known")
        return list(self.table[host])


def use_policy(gateway, allow: tuple[str, ...] = (), dns: FakeDns | None = None) -> FakeDns:
    dns = dns or FakeDns({})
    gateway.egress = dataclasses.replace(EgressPolicy.parse(allow), resolver=dns)
    return dns


CREATE = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
    __typename ... on UserError { code message field } ... on WebhookUrlRefused { url }
    ... on WebhookEndpointCreated { secret endpoint { id } } } }"""
LIST = "{ webhookEndpoints { ... on WebhookEndpoints { endpoints { id url } } } }"


def emit_event(gateway, workspace_id: str) -> str:
    with gateway.write_sessions.begin() as session:
        workspace = lock_workspace(session, workspace_id)
        return emit(session, workspace, EventType.BALANCE_TOPPED_UP, {"n": 1}, gateway.clock()).id


def add_endpoint(gateway, workspace_id: str, url: str) -> tuple[str, str]:
    """An endpoint written directly (as a URL accepted earlier, before its DNS changed)."""
    with gateway.write_sessions.begin() as session:
        row = endpoints.create_endpoint(session, workspace_id, url, [], gateway.clock())
        return row.id, row.secret


def only_delivery(gateway) -> tuple[Delivery, list[DeliveryAttempt]]:
    with gateway.sessions() as session:
        [delivery] = session.query(Delivery).all()
        return delivery, list(session.query(DeliveryAttempt).filter_by(delivery_id=delivery.id))


# ------------------------------------------------------------------ registration


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00:ec2::254]/latest/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/",
        "http://10.0.0.5:8080/h",  # private
        "http://172.16.3.4/h",
        "http://192.168.1.1/h",
        "http://[fd00::1]/h",
        "http://127.0.0.1:5432/",  # loopback
        "http://[::1]:6379/",
        "http://localhost:8080/h",
        "https://api.localhost/h",
        "http://0.0.0.0:8080/",  # unspecified
        "http://[::]/",
        "http://169.254.10.1/",  # link-local
        "http://[fe80::1]/",
        "http://100.64.0.1/",  # shared (carrier-grade NAT)
        "http://224.0.0.251/",  # multicast
        "http://[ff02::1]/",
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped, -compatible, NAT64 and 6to4 forms of loopback/private
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a00:5]/",
        "http://[2002:c0a8:101::1]/",
        "http://redis:6379/",  # one label: the local search list decides where it goes
    ],
)
def test_urls_that_reach_inside_the_network_are_refused_alike(graphql, make_workspace, url):
    member = make_workspace()
    result = graphql(CREATE, {"url": url}, key=member.key)["createWebhookEndpoint"]
    assert result == {
        "__typename": "WebhookUrlRefused",
        "code": "WEBHOOK_URL_REFUSED",
        "message": GENERIC_REFUSAL,  # the same whatever the reason: no map of the network
        "field": ["url"],
        "url": url,
    }
    assert graphql(LIST, key=member.key)["webhookEndpoints"]["endpoints"] == []


def test_public_addresses_are_accepted(graphql, make_workspace):
    member = make_workspace()
    for url in (
        "https://93.184.215.14/h",
        "https://[2606:4700::6810:84e5]/h",
        "https://[64:ff9b::5db8:d70e]/h",
    ):
        assert graphql(CREATE, {"url": url}, key=member.key)["createWebhookEndpoint"]["__typename"] == (
            "WebhookEndpointCreated"
        )


def test_a_name_is_judged_by_every_address_it_resolves_to(graphql, make_workspace, gateway, caplog):
    dns = use_policy(
        gateway,
        dns=FakeDns(
            {
                "hooks.acme.example": ["93.184.215.14"],
                "sneaky.example": ["93.184.215.14", "10.0.0.7"],  # one public answer is not enough
                "rebind.example": ["127.0.0.1"],
            }
        ),
    )
    member = make_workspace()
    assert graphql(CREATE, {"url": "https://hooks.acme.example/h"}, key=member.key)["createWebhookEndpoint"][
        "__typename"
    ] == ("WebhookEndpointCreated")
    with caplog.at_level(logging.WARNING, logger="gateway.webhooks"):
        for url in ("https://sneaky.example/h", "http://rebind.example:8080/h"):
            result = graphql(CREATE, {"url": url}, key=member.key)["createWebhookEndpoint"]
            assert (result["__typename"], result["message"]) == ("WebhookUrlRefused", GENERIC_REFUSAL)
    assert "sneaky.example resolves to 10.0.0.7" in caplog.text  # the operator sees why
    # A name that does not resolve yet is accepted: each send checks again.
    assert graphql(CREATE, {"url": "https://not-yet.example/h"}, key=member.key)["createWebhookEndpoint"][
        "__typename"
    ] == ("WebhookEndpointCreated")
    assert dns.lookups == ["hooks.acme.example", "sneaky.example", "rebind.example", "not-yet.example"]


def test_changing_the_url_to_a_refused_one_changes_nothing(graphql, make_workspace):
    member = make_workspace()
    endpoint_id = graphql(CREATE, {"url": "https://93.184.215.14/h"}, key=member.key)[
        "createWebhookEndpoint"
    ]["endpoint"]["id"]
    result = graphql(
        """mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {url: "http://169.254.169.254/"}) {
        __typename ... on UserError { code } } }""",
        {"id": endpoint_id},
        key=member.key,
    )["updateWebhookEndpoint"]
    assert result == {"__typename": "WebhookUrlRefused", "code": "WEBHOOK_URL_REFUSED"}
    assert graphql(LIST, key=member.key)["webhookEndpoints"]["endpoints"] == [
        {"id": endpoint_id, "url": "https://93.184.215.14/h"}
    ]


def test_the_allow_list_admits_self_hosted_receivers_but_never_metadata(graphql, make_workspace, gateway):
    use_policy(
        gateway,
        allow=("10.1.0.0/16", "169.254.0.0/16", "hooks.corp.example"),
        dns=FakeDns({"hooks.corp.example": ["10.9.9.9"], "metadata-alias.corp.example": ["169.254.169.254"]}),
    )
    member = make_workspace()

    def typename(url: str) -> str:
        return graphql(CREATE, {"url": url}, key=member.key)["createWebhookEndpoint"]["__typename"]

    assert typename("http://10.1.2.3:8080/h") == "WebhookEndpointCreated"  # an allowed network
    assert typename("http://hooks.corp.example/h") == "WebhookEndpointCreated"  # an allowed name
    assert typename("http://10.2.0.1/h") == "WebhookUrlRefused"  # not in the list
    assert typename("http://169.254.10.1/h") == "WebhookEndpointCreated"  # link-local, allowed
    assert typename("http://169.254.169.254/h") == "WebhookUrlRefused"  # ... but never the metadata service
    assert typename("http://metadata-alias.corp.example/h") == "WebhookUrlRefused"


def test_the_allow_list_comes_from_the_environment():
    settings = Settings.from_env(
        {"BILLING_GATEWAY_WEBHOOK_ALLOW": " 127.0.0.1, 10.0.0.0/8 ,hooks.corp.example"}
    )
    assert settings.webhook_allow == ("127.0.0.1", "10.0.0.0/8", "hooks.corp.example")
    assert [str(n) for n in settings.egress.allowed_networks] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert settings.egress.allowed_hosts == {"hooks.corp.example"}
    assert Settings().egress.allowed_networks == () and Settings().egress.allowed_hosts == frozenset()
    for value in ("10.0.0.1/8", "127.1", "not a host", "0x7f000001"):
        with pytest.raises(SettingsError, match="WEBHOOK_ALLOW"):
            Settings.from_env({"BILLING_GATEWAY_WEBHOOK_ALLOW": value})


# ------------------------------------------------------------------ sending


def test_each_send_checks_its_own_dns_answer_so_rebinding_reaches_nothing(
    gateway, clock, make_workspace, receiver, caplog
):
    """Registered while the name pointed outside; by the send it points at a service on
    loopback. The send refuses, the service never hears of it, and the tenant sees what a
    closed port would show."""
    hook = receiver()
    port = hook.server.server_address[1]
    dns = use_policy(gateway, dns=FakeDns({"hooks.acme.example": ["93.184.215.14"]}))
    member = make_workspace()
    endpoints.check_destination(gateway.egress, member.id, f"http://hooks.acme.example:{port}/h", 1)
    add_endpoint(gateway, member.id, f"http://hooks.acme.example:{port}/h")
    emit_event(gateway, member.id)
    dns.table["hooks.acme.example"] = ["127.0.0.1"]  # the rebinding

    with caplog.at_level(logging.INFO, logger="gateway.webhooks"):
        counts = webhook_delivery.deliver_due(gateway, clock(), rng=random.Random(1))

    assert counts.retrying == 1 and hook.requests == []
    delivery, [attempt] = only_delivery(gateway)
    assert (delivery.last_error, delivery.last_status_code) == (webhook_delivery.NO_RESPONSE, None)
    assert (attempt.error, attempt.status_code, attempt.response_excerpt) == (
        webhook_delivery.NO_RESPONSE,
        None,
        None,
    )
    assert "hooks.acme.example resolves to 127.0.0.1: not public and not allowed" in caplog.text


def test_the_connection_goes_to_the_address_checked_with_the_host_name_kept(
    gateway, clock, make_workspace, receiver
):
    """One lookup per attempt, and the connection uses its answer: the system resolver (which
    knows no such name) is never asked, and the receiver sees the URL's host in ``Host``."""
    hook = receiver()
    port = hook.server.server_address[1]
    dns = use_policy(gateway, allow=("127.0.0.1",), dns=FakeDns({"hooks.acme.example": ["127.0.0.1"]}))
    member = make_workspace()
    _, hook.secret = add_endpoint(gateway, member.id, f"http://hooks.acme.example:{port}/hooks")
    emit_event(gateway, member.id)

    assert webhook_delivery.deliver_due(gateway, clock()).delivered == 1

    [request] = hook.requests
    assert request.verified and request.headers["host"] == f"hooks.acme.example:{port}"
    assert dns.lookups == ["hooks.acme.example"]


def test_a_tenant_cannot_tell_a_closed_port_from_a_silent_one_or_a_refused_address(
    gateway, clock, make_workspace, receiver, graphql, caplog
):
    """Closed port, no answer in time, a name that does not resolve, an address the policy
    refuses: one message, no excerpt; the causes are in the operator's log."""
    silent = receiver()
    silent.respond = lambda request: (silent.release.wait(5), (200, b"late"))[1]
    closed = receiver()
    closed_url = closed.url
    closed.close()
    use_policy(gateway, allow=("127.0.0.1",), dns=FakeDns({"inside.acme.example": ["10.0.0.9"]}))
    member = make_workspace()
    for url in (closed_url, silent.url, "https://gone.acme.example/h", "https://inside.acme.example/h"):
        add_endpoint(gateway, member.id, url)
    emit_event(gateway, member.id)

    with caplog.at_level(logging.INFO, logger="gateway.webhooks"):
        counts = webhook_delivery.deliver_due(gateway, clock(), timeout=0.5, rng=random.Random(1))

    assert counts.retrying == 4
    shown = graphql(
        "{ webhookEndpoints { ... on WebhookEndpoints { endpoints { deliveries { lastError lastStatusCode "
        "attempts { statusCode responseExcerpt error } } } } } }",
        key=member.key,
    )["webhookEndpoints"]["endpoints"]
    expected = {
        "lastError": webhook_delivery.NO_RESPONSE,
        "lastStatusCode": None,
        "attempts": [{"statusCode": None, "responseExcerpt": None, "error": webhook_delivery.NO_RESPONSE}],
    }
    assert [e["deliveries"] for e in shown] == [[expected]] * 4
    log = caplog.text
    assert "ConnectionRefusedError" in log and "timed out after 0.5s" in log
    assert "resolving gone.acme.example failed" in log and "inside.acme.example resolves to 10.0.0.9" in log
