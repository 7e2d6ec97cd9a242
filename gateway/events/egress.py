"""The webhook egress policy: which hosts and addresses the gateway may POST a tenant's events to.

A webhook URL is the tenant's choice, and the gateway sends from inside the operator's network:
without a policy a tenant reaches the cloud's metadata service, the database, the admin port
of a service on loopback. So a webhook host must resolve to public addresses only, and this is
checked twice: when an endpoint is registered (a typed refusal) and at every send, on the
addresses of that very attempt, and the connection then goes to the exact address checked
(:func:`Destination.addresses` feeds :mod:`gateway.events.delivery`), so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot bypass it.

Refused, whatever the allow-list says: cloud metadata services (:data:`METADATA_ADDRESSES`,
:data:`METADATA_HOSTS`). Refused unless the operator allows them: every address that is not
global unicast (private, loopback, link-local, shared 100.64/10, multicast, reserved,
unspecified, documentation, benchmarking) and IPv6 addresses that embed such an IPv4 address
(IPv4-mapped and -compatible, 6to4, NAT64, Teredo); ``localhost`` and its subdomains; single-label
names (they resolve through the resolver's search list, inside the network).

``BILLING_GATEWAY_WEBHOOK_ALLOW`` (:meth:`EgressPolicy.parse`) lists what self-hosted receivers
need: networks (``10.1.2.0/24``, ``127.0.0.1``) whose addresses are allowed, and host names
whose resolved addresses are allowed whatever they are.

Host spellings that resolvers read in surprising ways (``2130706433``, ``0x7f000001``,
``127.1``, ``0177.0.0.1``) are not URLs the gateway accepts at all (:func:`canonical_host`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services: AWS, Azure, GCP, DigitalOcean, OpenStack (169.254.169.254), AWS ECS
# task metadata (169.254.170.2), AWS over IPv6 (fd00:ec2::254), Alibaba (100.100.100.200),
# Oracle (192.0.0.192). Never allowed, whatever the allow-list says.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)

# Beyond what ``ipaddress`` calls not global (in the Python versions the gateway supports).
_ALSO_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # the deprecated 6to4 relay anycast
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/23",  # IETF protocol assignments (Teredo among them)
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "fec0::/10",  # site-local (deprecated)
        "5f00::/16",  # segment routing
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")

GENERIC_REFUSAL = (
    "webhook URLs must reach a public internet address: private, loopback, link-local, multicast "
    "and cloud metadata addresses are refused (an operator can allow self-hosted receivers)"
)


class HostSpellingError(ValueError):
    """The URL's host is not a plain DNS name, dotted-quad IPv4 or bracketed IPv6 address."""


class EgressRefused(Exception):
    """The destination is not allowed; ``reason`` is for the operator's log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(Exception):
    """The host name did not resolve (in time); ``reason`` is for the operator's log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_host(hostname: str) -> str:
    """The host as the policy reads it: a lower-case DNS name without a final dot, a dotted-quad
    IPv4 address, or an IPv6 address (without brackets); HostSpellingError for anything else.

    Numbers in other forms (``2130706433``, ``0x7f000001``, ``127.1``, ``0177.0.0.1``) are
    IPv4 addresses to ``inet_aton`` and so to most resolvers: refused rather than guessed at.
    """
    host = hostname.lower()
    if ":" in host:  # urlsplit took the brackets off
        if "%" in host:
            raise HostSpellingError("IPv6 zone identifiers are not allowed")
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise HostSpellingError("not an IPv6 address") from None
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise HostSpellingError(
            "the host must be a DNS name of letters, digits and hyphens (punycode xn-- for "
            "international names) or an IP address"
        )
    if _NUMERIC_LABEL.match(labels[-1]):  # no top-level domain is numeric: an IPv4 address
        try:
            return str(ipaddress.IPv4Address(name))  # four decimal numbers, no leading zeros
        except ValueError:
            raise HostSpellingError("write an IPv4 address as four decimal numbers, like 192.0.2.7") from None
    return name


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """A global unicast address that embeds no other kind, and no metadata service."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    if address in METADATA_ADDRESSES:
        return False
    if inner is not None:  # mapped or translated: judged by what it reaches (above)
        return not any(address in n for n in _ALSO_REFUSED)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not any(address in n for n in _ALSO_REFUSED)
    )


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# Lookups run here so that each is bounded in time (getaddrinfo itself takes no time limit); a
# lookup that hangs keeps its thread until the system resolver gives up, and when all are busy
# later lookups time out waiting: refused, never unbounded.
_lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


@dataclass(frozen=True)
class Destination:
    """A host checked against the policy, with the addresses (in the resolver's order) that a
    connection may use: exactly these, never a second lookup."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class EgressPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    # host, port -> addresses as text; the system's getaddrinfo unless a test gives another
    resolver: Callable[[str, int], list[str]] = field(default=_system_resolver, compare=False)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """From ``BILLING_GATEWAY_WEBHOOK_ALLOW``'s entries: networks or addresses (``10.1.0.0/16``,
        ``127.0.0.1``, ``fd12::/64``) and host names; ValueError names an entry it cannot read."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=True))
                continue
            except ValueError:
                pass
            try:
                host = canonical_host(entry)
            except HostSpellingError:
                raise ValueError(
                    f"{entry!r} is neither a network (CIDR), an IP address nor a host name"
                ) from None
            if ":" in host or _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
                raise ValueError(f"{entry!r} is not a network: write it as an address or in CIDR notation")
            hosts.add(host)
        return cls(tuple(networks), frozenset(hosts))

    def _allowed(self, host: str, address: IPAddress) -> bool:
        inner = embedded_ipv4(address)
        if address in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
            return False
        if host in self.allowed_hosts:
            return True
        candidates = (address,) if inner is None else (address, inner)
        if any(a in n for a in candidates for n in self.allowed_networks if a.version == n.version):
            return True
        return is_public(address)

    def check_host(self, host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """What can be judged without DNS, for a host from :func:`canonical_host`: refuses a
        literal address that is not allowed, and names that are never public; the literal
        address, or None for a name (to be resolved)."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            if not self._allowed(host, literal):
                raise EgressRefused(f"address {literal} is not public and not allowed")
            return literal
        if host in METADATA_HOSTS:
            raise EgressRefused(f"{host} is a cloud metadata service")
        if host in self.allowed_hosts:
            return None
        if host == "localhost" or host.endswith(".localhost"):
            raise EgressRefused(f"{host} is loopback")
        if "." not in host:
            raise EgressRefused(f"{host} is a single-label name (resolved through the local search list)")
        return None

    def resolve(self, host: str, port: int, timeout: float) -> Destination:
        """Check ``host`` and every address it resolves to; EgressRefused if any is not
        allowed, Unresolvable if the lookup fails or takes longer than ``timeout`` seconds."""
        literal = self.check_host(host)
        if literal is not None:
            return Destination(host, port, (literal,))
        try:
            answers = _lookups.submit(self.resolver, host, port).result(timeout=max(timeout, 0.001))
        except FutureTimeout:
            raise Unresolvable(f"resolving {host} took longer than {timeout:g}s") from None
        except (OSError, UnicodeError) as error:
            raise Unresolvable(f"resolving {host} failed: {error}") from None
        addresses = _unique(ipaddress.ip_address(a.split("%", 1)[0]) for a in answers)
        if not addresses:
            raise Unresolvable(f"{host} has no address")
        refused = [a for a in addresses if not self._allowed(host, a)]
        if refused:
            shown = ", ".join(str(a) for a in refused)
            raise EgressRefused(f"{host} resolves to {shown}: not public and not allowed")
        return Destination(host, port, addresses)


def _unique(addresses: Iterable[IPAddress]) -> tuple[IPAddress, ...]:
    seen: list[IPAddress] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return tuple(seen)
