"""Gossip over real sockets: exactly-once delivery across topologies, verdicts and penalties."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from powerverse.p2p import GossipMessage, Host, PayloadTooLarge, Verdict
from powerverse.p2p.messages import Gossip
from tests.p2p.conftest import HostFactory, RawPeer, fast_config, wait_until

TOPIC = 3


class Recorder:
    """Counts deliveries per payload at one host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.counts: Counter[bytes] = Counter()
        host.subscribe(TOPIC, lambda m: Verdict.ACCEPT, self.deliver)

    def deliver(self, message: GossipMessage) -> None:
        self.counts[message.payload] += 1


async def build(make_host: HostFactory, n: int, edges: list[tuple[int, int]]) -> list[Host]:
    # target_peers=1: hosts do not dial the addresses they learn, so the topology stays as built.
    hosts = [await make_host(config=fast_config(target_peers=1)) for _ in range(n)]
    for i, j in edges:
        await hosts[i].connect(hosts[j].listen_address)  # type: ignore[arg-type]
    await wait_until(
        lambda: all(hosts[j].is_connected(hosts[i].peer_id) for i, j in edges), "the topology"
    )
    return hosts


async def flood_and_check(hosts: list[Host], recorders: list[Recorder]) -> None:
    """Every host publishes one message; every other host delivers each exactly once."""
    payloads = [b"from host %d" % i for i in range(len(hosts))]
    for host, payload in zip(hosts, payloads, strict=True):
        host.publish(TOPIC, payload)

    def everywhere() -> bool:
        return all(
            r.counts[p] >= 1
            for i, r in enumerate(recorders)
            for j, p in enumerate(payloads)
            if i != j
        )

    await wait_until(everywhere, "every message at every host")
    # Late duplicates would arrive before a later message that follows the same paths.
    for host in hosts:
        host.publish(TOPIC, b"marker from " + host.peer_id)
    markers = [b"marker from " + h.peer_id for h in hosts]
    await wait_until(
        lambda: all(
            r.counts[m] == 1 for r in recorders for m in markers if m[12:] != r.host.peer_id
        ),
        "the markers",
    )
    for i, recorder in enumerate(recorders):
        for j, payload in enumerate(payloads):
            assert recorder.counts[payload] == (0 if i == j else 1), (i, j)


async def test_a_line_of_five_delivers_each_message_once_everywhere(
    make_host: HostFactory,
) -> None:
    hosts = await build(make_host, 5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    recorders = [Recorder(h) for h in hosts]
    await flood_and_check(hosts, recorders)
    middle = hosts[2].gossip_stats
    assert middle.accepted == 2 * 5 - 2  # 4 messages + 4 markers from the others


async def test_a_ring_delivers_each_message_once_and_drops_the_copies(
    make_host: HostFactory,
) -> None:
    n = 6
    hosts = await build(make_host, n, [(i, (i + 1) % n) for i in range(n)])
    recorders = [Recorder(h) for h in hosts]
    await flood_and_check(hosts, recorders)
    # In a ring each message reaches most hosts twice; the second copy is dropped unseen.
    assert sum(h.gossip_stats.duplicates for h in hosts) > 0


async def test_a_full_mesh_delivers_each_message_once(make_host: HostFactory) -> None:
    n = 4
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
    hosts = await build(make_host, n, edges)
    await flood_and_check(hosts, [Recorder(h) for h in hosts])


async def test_rejected_messages_are_not_relayed_and_penalize_the_sender(
    make_host: HostFactory,
) -> None:
    config = fast_config(target_peers=1, reject_penalty=10.0, score_recovery_per_s=0.0)
    a = await make_host(config=config)
    b, c = await make_host(config=config), await make_host(config=config)
    await b.connect(a.listen_address)  # type: ignore[arg-type]
    await c.connect(a.listen_address)  # type: ignore[arg-type]
    await wait_until(lambda: len(a.peers()) == 2, "a's two peers")
    rejected: list[bytes] = []
    ignored: list[bytes] = []

    async def validate(message: GossipMessage) -> Verdict:
        await asyncio.sleep(0)  # validators may be async (signature checks)
        if message.payload.startswith(b"bad"):
            rejected.append(message.payload)
            return Verdict.REJECT
        if message.payload.startswith(b"old"):
            ignored.append(message.payload)
            return Verdict.IGNORE
        return Verdict.ACCEPT

    a.subscribe(TOPIC, validate, lambda m: None)
    at_c: list[bytes] = []
    c.subscribe(TOPIC, lambda m: Verdict.ACCEPT, lambda m: at_c.append(m.payload))

    b.publish(TOPIC, b"bad 0")
    b.publish(TOPIC, b"old 0")
    b.publish(TOPIC, b"good 0")
    await wait_until(lambda: at_c == [b"good 0"], "the good message at c")
    assert rejected == [b"bad 0"] and ignored == [b"old 0"]
    assert a.score(b.peer_id) == -10.0  # one REJECT; IGNORE costs nothing

    for i in range(1, 10):
        b.publish(TOPIC, b"bad %d" % i)
    await wait_until(lambda: a.is_banned(b.peer_id), "b's ban")
    await wait_until(lambda: not b.is_connected(a.peer_id), "b to be disconnected")
    [ban] = a.banned()
    assert ban.peer_id == b.peer_id and "rejected gossip" in ban.reason
    assert at_c == [b"good 0"]  # nothing rejected reached c
    assert a.is_connected(c.peer_id)


async def test_publish_checks_topic_and_size(make_host: HostFactory) -> None:
    a = await make_host(config=fast_config(max_frame_size=1024))
    with pytest.raises(PayloadTooLarge):
        a.publish(TOPIC, bytes(2000))
    with pytest.raises(ValueError):
        a.publish(65536, b"x")
    a.publish(TOPIC, bytes(a.config.max_payload_size))  # the largest payload is fine


async def test_a_full_gossip_queue_drops_penalizes_and_lets_other_copies_through(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    config = fast_config(gossip_queue_size=2, queue_overflow_penalty=5.0, score_recovery_per_s=0)
    a = await make_host(config=config)
    release, validating = asyncio.Event(), asyncio.Event()
    delivered: list[bytes] = []

    async def slow(message: GossipMessage) -> Verdict:
        validating.set()
        await release.wait()
        return Verdict.ACCEPT

    a.subscribe(TOPIC, slow, lambda m: delivered.append(m.payload))
    flooder = await RawPeer.connect(a)
    raw_peers.append(flooder)
    await wait_until(lambda: a.is_connected(flooder.peer_id), "the flooder's session")
    flooder.send(Gossip(TOPIC, b"m0"))
    await validating.wait()
    for i in range(1, 6):  # two queued behind m0, three over the queue
        flooder.send(Gossip(TOPIC, b"m%d" % i))
    await wait_until(lambda: a.score(flooder.peer_id) == -15.0, "three overflow penalties")

    other = await RawPeer.connect(a)
    raw_peers.append(other)
    other.send(Gossip(TOPIC, b"m5"))  # dropped at the flooder: not marked as seen
    other.send(Gossip(TOPIC, b"m0"))  # already being validated: a duplicate
    release.set()
    await wait_until(lambda: len(delivered) == 4, "the admitted messages")
    assert sorted(delivered) == [b"m0", b"m1", b"m2", b"m5"]
