"""Bounded TCP reassembly: order, overlaps, retransmissions, caps, eviction."""

from __future__ import annotations

import ast
import dataclasses
import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.decode.batch import PacketBatch, empty_columns
from teiten.flows.reassembly import FLOW_OVERHEAD, Finished, Reassembler, Session
from teiten.flows.segment import lone_cost

CLIENT, SERVER = 0x01020304, 0xCB007101
S = 1_000_000_000


def batch(packets: list[tuple[int, int, bytes, int, bool]]) -> tuple[PacketBatch, np.ndarray]:
    """(ts_s, seq, payload, flags, outbound) per packet, one client/server pair."""
    n = len(packets)
    c = empty_columns(n)
    data = b"".join(p[2] for p in packets)
    offsets = np.cumsum([0] + [len(p[2]) for p in packets])[:-1]
    for i, (ts, seq, _payload, flags, out) in enumerate(packets):
        c["ts"][i] = ts * S
        c["ip_version"][i], c["proto"][i] = 4, 6
        c["src_ip4"][i], c["dst_ip4"][i] = (SERVER, CLIENT) if out else (CLIENT, SERVER)
        c["src_port"][i], c["dst_port"][i] = (52869, 40000) if out else (40000, 52869)
        c["tcp_seq"][i], c["tcp_flags"][i] = seq, flags
    c["is_outbound"] = np.array([p[4] for p in packets], bool)
    b = PacketBatch(c, offsets.astype(np.int64), np.array([len(p[2]) for p in packets], np.uint32))
    return b, np.frombuffer(data, np.uint8)


def run(r: Reassembler, packets: list[tuple[int, int, bytes, int, bool]]) -> list[Session]:
    b, data = batch(packets)
    return [*r.feed(b, data), *r.flush()]


def test_out_of_order_and_retransmission() -> None:
    (s,) = run(
        Reassembler(),
        [
            (1, 1006, b"world", 0, False),
            (1, 1000, b"hello ", 0, False),
            (2, 1000, b"hello ", 0, False),
            (2, 7, b"ok", 0, True),
        ],
    )
    assert s.client_bytes == b"hello world" and s.server_bytes == b"ok"
    assert not s.gap and s.client_total == 17 and s.packets == 4  # retransmission counted
    assert (s.client, s.client_port, s.server_port) == (CLIENT.to_bytes(4, "big"), 40000, 52869)


def test_first_copy_wins_on_overlap() -> None:
    (s,) = run(Reassembler(), [(1, 100, b"AAAA", 0, False), (1, 102, b"BBBB", 0, False)])
    assert s.client_bytes == b"AAAABB"


def test_gap_stops_the_stream() -> None:
    (s,) = run(Reassembler(), [(1, 100, b"AAAA", 0, False), (1, 110, b"CCCC", 0, False)])
    assert s.client_bytes == b"AAAA" and s.gap


def test_sequence_wrap() -> None:
    (s,) = run(Reassembler(), [(1, 2**32 - 3, b"abc", 0, False), (1, 0, b"def", 0, False)])
    assert s.client_bytes == b"abcdef"


def test_per_flow_and_server_caps() -> None:
    r = Reassembler(per_flow_cap=10, server_cap=3)
    (s,) = run(r, [(1, 0, b"0123456789abcdef", 0, False), (1, 0, b"server", 0, True)])
    assert s.client_bytes == b"0123456789" and s.truncated and s.server_bytes == b"ser"
    assert s.client_total == 16 and r.held == 0


def test_idle_and_closed_flows_are_emitted_in_time() -> None:
    r = Reassembler(idle_s=60, close_s=5)
    b, data = batch([(0, 0, b"a", 0, False), (1, 1, b"b", 0x01, False)])  # FIN at 1 s
    assert list(r.feed(b, data)) == []
    b, data = batch([(10, 0, b"x", 0x10, True)])  # server bytes on the closing flow
    assert list(r.feed(b, data)) == []
    b2, data2 = batch([(30, 5, b"", 0, False)])
    (s,) = list(r.feed(b2, data2))
    assert s.client_bytes == b"ab"


def test_memory_cap_evicts_oldest() -> None:
    r = Reassembler(memory_cap=100)
    cols = []
    for port in range(50):
        b, data = batch([(1, 0, b"x" * 10, 0, False)])
        b.columns["src_port"][:] = 1000 + port
        cols += list(r.feed(b, data))
    assert r.held <= 100 and len(cols) >= 40 and r.evicted_for_memory == len(cols)


def test_udp_datagram_is_a_session() -> None:
    b, data = batch([(1, 0, b"\x00\x01probe", 0, False)])
    b.columns["proto"][:] = 17
    (s,) = list(Reassembler().feed(b, data))
    assert s.proto == 17 and s.client_bytes == b"\x00\x01probe"


def test_syn_floods_hold_nothing() -> None:
    r = Reassembler()
    b, data = batch([(1, i, b"", 0x02, False) for i in range(1000)])
    assert list(r.feed(b, data)) == [] and not r.flows


@given(
    st.binary(min_size=1, max_size=300),
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_any_segmentation_and_order_gives_the_stream(
    data: bytes, cuts: list[int], rnd: object
) -> None:
    pieces, pos = [], 0
    for size in cuts * 30:
        if pos >= len(data):
            break
        pieces.append((pos, data[pos : pos + size]))
        pos += size
    if pos < len(data):
        pieces.append((pos, data[pos:]))
    rnd.shuffle(pieces)  # type: ignore[attr-defined]
    start = min(p for p, _ in pieces)
    packets = [(1, 5000 + p, chunk, 0, False) for p, chunk in pieces]
    packets.sort(key=lambda p: p[1] == 5000 + start, reverse=True)  # first segment first
    (s,) = run(Reassembler(), packets)
    assert s.client_bytes == data and not s.gap


def test_a_lower_sequence_number_later_never_replaces_received_bytes() -> None:
    """The classic evasion: "GET" first, then "EVIL" retransmitted over it from a lower seq."""
    (s,) = run(
        Reassembler(),
        [(1, 1000, b"GET / HTTP/1.1\r\n\r\n", 0, False), (1, 999, b"EVIL /x HTTP/1.1", 0, False)],
    )
    assert s.client_bytes == b"E" + b"GET / HTTP/1.1\r\n\r\n"  # only the byte never received
    assert not s.gap


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ((98, b"xxxx"), b"xxAAAA"),  # overlaps the start: only the two new bytes before it
        ((101, b"yy"), b"AAAA"),  # inside: nothing new
        ((102, b"zzzz"), b"AAAAzz"),  # overlaps the end: only the two new bytes after it
        ((99, b"wwwwww"), b"wAAAAw"),  # covers it completely: only the new bytes around it
        ((100, b"vvvv"), b"AAAA"),  # same place, different bytes
    ],
)
def test_conflicting_retransmissions_keep_the_first_copy(
    second: tuple[int, bytes], expected: bytes
) -> None:
    seq, data = second
    (s,) = run(Reassembler(), [(1, 100, b"AAAA", 0, False), (1, seq, data, 0, False)])
    assert s.client_bytes == expected and not s.gap


def test_a_filled_hole_keeps_the_bytes_around_it() -> None:
    (s,) = run(
        Reassembler(),
        [
            (1, 100, b"AB", 0, False),
            (1, 104, b"EF", 0, False),
            (1, 101, b"xyzwv", 0, False),  # over B, the hole C D, and E
            (1, 104, b"QQ", 0, False),
        ],
    )
    assert s.client_bytes == b"AByzEF" and not s.gap


def test_the_span_is_capped_without_dropping_held_bytes() -> None:
    r = Reassembler(per_flow_cap=8)
    (s,) = run(r, [(1, 100, b"abcd", 0, False), (1, 90, b"0123456789", 0, False)])
    assert s.client_bytes == b"6789abcd" and s.truncated and r.held == 0


def _one_byte_flows(flows: int, segments: int, step: int, reverse: bool) -> list[Session]:
    packets = []
    for _ in range(flows):
        order = range(segments - 1, -1, -1) if reverse else range(segments)
        packets += [(1, 1000 + k * step, b"x", 0, False) for k in order]
    b, data = batch(packets)
    b.columns["src_port"][:] = np.repeat(np.arange(flows) + 1000, segments)
    r = Reassembler(memory_cap=1 << 40)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert list(r.feed(b, data)) == []
        real = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(r.flows) == flows
    assert real / 2 <= r.held <= 2 * real, (r.held, real)
    return list(r.flush())


@pytest.mark.parametrize(
    ("segments", "step", "reverse"),
    [(1, 1, False), (100, 1, False), (100, 1, True), (100, 2, False), (100, 3, True)],
)
def test_memory_counted_is_within_twice_the_real_memory(
    segments: int, step: int, reverse: bool
) -> None:
    """One-byte segments (in order, reversed, with holes) for many flows vs tracemalloc."""
    sessions = _one_byte_flows(150, segments, step, reverse)
    assert len(sessions) == 150
    held = segments if step == 1 else 1  # with holes, the stream ends at the first
    assert sessions[0].client_bytes == b"x" * held
    assert sessions[0].gap == (step > 1)


@given(
    st.lists(
        st.tuples(st.integers(-40, 80), st.binary(min_size=1, max_size=30)), min_size=1, max_size=15
    ),
    st.integers(8, 200),
)
def test_any_overlaps_keep_the_first_copy_of_every_byte(
    segments: list[tuple[int, bytes]], cap: int
) -> None:
    """A model: every position keeps the first byte received for it, within the cap window."""
    first_seq = segments[0][0]
    held: dict[int, int] = {}
    lo = hi = None
    for rel, data in segments:
        rel -= first_seq
        a, b = rel, rel + len(data)
        floor, ceiling = -cap, cap
        if lo is not None and hi is not None:
            floor, ceiling = max(floor, hi - cap), min(ceiling, lo + cap)
        for pos in range(max(a, floor), min(b, ceiling)):
            held.setdefault(pos, data[pos - a])
        if held:
            lo, hi = min(held), max(held) + 1
    expected = bytearray()
    if held:
        pos = min(held)
        while pos in held:
            expected.append(held[pos])
            pos += 1
    packets = [(1, (5000 + rel) & 0xFFFFFFFF, data, 0, False) for rel, data in segments]
    r = Reassembler(per_flow_cap=cap)
    (s,) = run(r, packets)
    assert s.client_bytes == bytes(expected)
    assert s.gap == (len(expected) < len(held)) and r.held == 0


SRC = Path(__file__).resolve().parents[2] / "src" / "teiten"


def _imports(package: str) -> set[str]:
    found = set()
    for path in (SRC / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


def test_readers_do_not_classify_enrich_or_store() -> None:
    """Only the pipeline orders stages: flows reassemble and capture reads, nothing more."""
    for package, banned in (("flows", ("classify", "enrich", "store")),
                            ("capture", ("classify", "enrich", "flows"))):  # fmt: skip
        bad = {m for m in _imports(package) if m.split(".")[1:2] and m.split(".")[1] in banned}
        assert not bad, (package, bad)


def test_reassembled_sessions_carry_no_classification() -> None:
    """A flow gives what was received (bytes, ends, times, counts); classifying it is the
    pipeline's next stage."""
    names = {f.name for f in dataclasses.fields(Session)}
    assert {"client_bytes", "server_bytes", "ts_first", "client_total", "packets"} <= names
    assert not names & {"app", "kind", "signatures", "cves", "indicators", "src_cc"}


def test_a_lone_segment_is_counted_as_its_flow_object() -> None:
    """LoneSegments rows cost what the flow object of one segment costs."""
    for n in (1, 7, 8, 9, 100, 1000, 4096, 70_000):
        b, data = batch([(1, 0, b"y" * n, 0, False)])
        objects, columns = Reassembler(), Reassembler(datagrams=False)
        assert list(objects.feed(b, data)) == []
        done = columns.feed_columns(b, data)
        assert not done.sessions and not len(done.lone) and not columns.flows
        assert (
            columns.held
            == objects.held
            == int(lone_cost(np.array([min(n, 65536)]), FLOW_OVERHEAD)[0])
        )


def _rows(done: Finished) -> list[tuple[object, ...]]:
    """What a Finished holds, as (order key, session fields), in output order."""
    rows: list[tuple[object, ...]] = [
        (k, s.client, s.client_port, s.server_port, s.ts_first, s.ts_last, s.client_bytes,
         s.server_bytes, s.client_total, s.packets, s.gap, s.truncated)
        for k, s in zip(done.session_keys.tolist(), done.sessions, strict=True)
    ]  # fmt: skip
    d = done.lone
    for j, k in enumerate(done.lone_keys.tolist()):
        rows.append((k, int(d.client4[j]).to_bytes(4, "big"), int(d.client_port[j]),
                     int(d.server_port[j]), int(d.ts[j]), int(d.ts[j]),
                     d.client_bytes[j].as_py(), d.server_bytes[j].as_py(), int(d.length[j]), 1,
                     False, bool(d.truncated[j])))  # fmt: skip
    return [r[1:] for r in sorted(rows, key=lambda r: r[0])]  # type: ignore[arg-type, return-value]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # flow (client port)
            st.integers(0, 400),  # seconds
            st.integers(0, 60),  # sequence offset
            st.binary(min_size=1, max_size=40),
            st.sampled_from([0, 0, 0x01, 0x04]),
            st.booleans(),  # outbound (server bytes)
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.integers(1, 6), min_size=1, max_size=8),
    st.sampled_from([100, 2000, 256 << 20]),
    st.sampled_from([16, 64 << 10]),
)
@settings(deadline=None)  # the first example compiles the numba kernels
def test_columns_give_the_sessions_objects_give(
    packets: list[tuple[int, int, int, bytes, int, bool]],
    cuts: list[int],
    memory_cap: int,
    per_flow_cap: int,
) -> None:
    """Any packets cut into any batches: feed_columns (lone segments as rows, promoted when
    a later batch continues them, evicted and expired among the objects) gives the
    sessions, in the order, that feed gives."""
    packets = sorted(packets, key=lambda p: p[1])
    objects = Reassembler(memory_cap=memory_cap, per_flow_cap=per_flow_cap, idle_s=60, close_s=5)
    columns = Reassembler(
        memory_cap=memory_cap, per_flow_cap=per_flow_cap, idle_s=60, close_s=5, datagrams=False
    )
    want: list[tuple[object, ...]] = []
    got: list[tuple[object, ...]] = []
    at, cut = 0, 0
    while at < len(packets):
        size = cuts[cut % len(cuts)]
        cut += 1
        part = packets[at : at + size]
        at += size
        b, data = batch([(ts, 1000 * f + seq, p, fl, out) for f, ts, seq, p, fl, out in part])
        b.columns["src_port"][:] = [52869 if out else 40000 + f for f, _, _, _, _, out in part]
        b.columns["dst_port"][:] = [40000 + f if out else 52869 for f, _, _, _, _, out in part]
        want += [
            (s.client, s.client_port, s.server_port, s.ts_first, s.ts_last, s.client_bytes,
             s.server_bytes, s.client_total, s.packets, s.gap, s.truncated)
            for s in objects.feed(b, data)
        ]  # fmt: skip
        got += _rows(columns.feed_columns(b, data))
        assert columns.held == objects.held
    want += [
        (s.client, s.client_port, s.server_port, s.ts_first, s.ts_last, s.client_bytes,
         s.server_bytes, s.client_total, s.packets, s.gap, s.truncated)
        for s in objects.flush()
    ]  # fmt: skip
    got += _rows(columns.flush_columns())
    assert got == want
    assert columns.evicted_for_memory == objects.evicted_for_memory
