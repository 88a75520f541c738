"""The address policy: which IP addresses are public, for every program that connects to an
address a user named (the worker's `input.url`, the operator's webhooks).

Pure and dependency-free: the worker imports it in its first milliseconds.
"""

from __future__ import annotations


def public_address(ip: str) -> bool:
    """True for a public unicast address: False for every range of IANA's IPv4 and IPv6
    special-purpose address registries (private, loopback, link-local, shared, documentation,
    benchmarking, translation, ...), multicast, and IPv6 outside global unicast (2000::/3).

    Of the IPv6 forms that carry an IPv4 address, only NAT64's well-known prefix 64:ff9b::/96
    (globally reachable per IANA; an IPv6-only cluster with DNS64 reaches IPv4 hosts through
    it) is judged by the address it carries. Every other one is refused whatever it carries:
    IPv4-mapped ::ffff:0:0/96 (a name never resolves to one: getaddrinfo answers IPv4 as IPv4),
    SIIT's ::ffff:0:0:0/96, the deprecated IPv4-compatible ::/96, local-use NAT64
    64:ff9b:1::/48 and 6to4 2002::/16."""
    import ipaddress  # only the public-only path pays for it

    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return False  # a zone (fe80::1%eth0) only exists on a link
        if address in ipaddress.IPv6Network(NAT64):
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address not in ipaddress.IPv6Network(GLOBAL_UNICAST_V6):
            return False
    for net in map(ipaddress.ip_network, NON_PUBLIC):
        if net.version == address.version and address in net:
            return False
    return address.is_global and not address.is_multicast


NAT64 = "64:ff9b::/96"
# IANA assigns global unicast IPv6 only from here: everything outside (::/8 with the
# IPv4-compatible, -mapped and -translated forms, 64:ff9b:1::/48, 100::/64, 5f00::/16,
# fc00::/7, fe80::/10, fec0::/10, ff00::/8, ...) is refused by this alone.
GLOBAL_UNICAST_V6 = "2000::/3"

# Refused whatever this Python's `ipaddress` tables say (they have changed between 3.11
# patch releases; the image's may be older than the tests'): every range of the IANA IPv4 and
# IPv6 special-purpose address registries (also those marked globally reachable, such as the
# AS112 and AMT ranges: no input is fetched from them), multicast and the deprecated 6to4
# relay anycast. The IPv6 ranges outside 2000::/3 are listed too, so that the list is the
# registry and a change of the rule above cannot open one.
NON_PUBLIC = (
    # IPv4
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    # IPv6, outside 2000::/3
    "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64",
    "100:0:0:1::/64", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    # IPv6, inside 2000::/3
    "2001::/23", "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20",
)  # fmt: skip
