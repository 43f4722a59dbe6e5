"""Declare the ``npa-2017`` scenario (and its two-day ``smoke`` cut) and build its traffic.

The case: from 2017-11-01 a Japanese darknet saw a surge of SYNs to
52869/TCP (the Realtek miniigd UPnP exploit, CVE-2014-8361) and of
Mirai-fingerprinted Telnet scanning (23/TCP, 2323/TCP) from Japan-allocated
addresses, while Telnet scanning from abroad stayed flat (NPA report of
2017-12-19, ``shared/seed``). Infected domestic routers do both, so the
52869 and Telnet source sets overlap. Around it runs ordinary background
radiation, research and attack scanners (ZMap, Masscan, Nmap), DoS
backscatter, a few pings and spoofed packets, and the responder's sessions.

:class:`Volumes` holds every rate at scale 1; ``smoke`` uses the same
mechanisms with small volumes over 2017-10-31 and 2017-11-01.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

import numpy as np
import numpy.typing as npt

from teiten.simulate import schedule as sc
from teiten.simulate import traffic as tr
from teiten.simulate.exchanges import SessionPlan, Sources, build_sessions, plan_sessions
from teiten.simulate.payloads import REALTEK_VARIANTS
from teiten.simulate.pcapwriter import PacketColumns, concat
from teiten.simulate.scenario import Context, Scenario, Traffic

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
Gen = np.random.Generator

BACKGROUND_PORTS: tuple[tuple[str, float], ...] = (
    ("445/tcp", 18), ("22/tcp", 10), ("80/tcp", 7), ("8080/tcp", 5), ("3389/tcp", 6),
    ("1433/tcp", 5), ("3306/tcp", 3), ("5900/tcp", 3), ("443/tcp", 3), ("81/tcp", 2),
    ("21/tcp", 2), ("25/tcp", 1.5), ("135/tcp", 2), ("139/tcp", 1.5), ("7547/tcp", 2),
    ("5555/tcp", 1), ("8443/tcp", 1), ("6379/tcp", 1), ("37215/tcp", 0.3),
    ("5060/udp", 4), ("53/udp", 2), ("123/udp", 2), ("1900/udp", 1.5), ("161/udp", 1),
    ("137/udp", 1), ("11211/udp", 0.5),
)  # fmt: skip
"""Background ports and their weights (the remaining 12 % go to random ports)."""
TAIL_SHARE = 0.12
SURGE_PORTS = ("23/tcp", "2323/tcp", "52869/tcp")
SCAN_PORTS = (80, 443, 8080, 22, 21, 3389, 7547, 5432, 6379, 9200, 27017, 1883, 502, 102)
NMAP_PORTS = (21, 22, 25, 53, 80, 110, 139, 143, 443, 445, 3306, 3389, 5900, 8080)
DOS_PORTS = (80, 443, 53, 25565, 27015, 22, 3074)


@dataclass(frozen=True)
class Volumes:
    """Rates at scale 1 (packets or events per day; source counts)."""

    onset: date
    background: float = 11_000
    background_sources: int = 30_000
    domestic_share: float = 0.08
    telnet_foreign: float = 2_500
    telnet_foreign_sources: int = 1_500
    telnet_domestic: float = 60
    telnet_domestic_sources: int = 150
    bots: int = 2_600
    bot_rate: float = 6.0
    upnp_share: float = 0.7
    upnp_rate: float = 2.0
    upnp_only_bots: int = 500
    upnp_foreign_bots: int = 400
    upnp_baseline: float = 6.0
    growth_days: float = 3.5
    zmap_scans: float = 2.0
    masscan_scans: float = 2.0
    nmap_scans: float = 0.08
    dos_events: float = 3.0
    echo: float = 40.0
    spoofed: int = 12
    nmap_ports: int = 14
    realtek_sessions: int = 160
    benign_sessions: int = 8
    telnet_sessions: int = 120


@dataclass
class Bots:
    """Infected routers in infection order: traits, what each scans, when each is active."""

    addrs: U32
    sport: I64
    win: I64
    hops: I64
    upnp: npt.NDArray[np.bool_]
    telnet: npt.NDArray[np.bool_]
    active: npt.NDArray[np.bool_]
    """(day, bot) → infected and online."""


def _bots(ctx: Context, name: str, addrs: U32, v: Volumes, telnet_share: float) -> Bots:
    """Bots that scan Telnet (Mirai-style), 52869, or both; domestic unless no Telnet."""
    rng = ctx.rng(name)
    n = len(addrs)
    telnet = rng.random(n) < telnet_share
    upnp = ~telnet | (rng.random(n) < v.upnp_share)
    active = sc.infected(ctx, rng, n, ctx.day_of(v.onset), v.growth_days)
    return Bots(addrs, rng.integers(1024, 65536, n), rng.integers(0, 65536, n),
                sc.hops(rng, n, telnet_share > 0), upnp, telnet, active)  # fmt: skip


def _port_table() -> tuple[I64, npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    ports = np.array([int(k.split("/")[0]) for k, _ in BACKGROUND_PORTS], np.int64)
    udp = np.array([k.endswith("/udp") for k, _ in BACKGROUND_PORTS])
    weight = np.array([w for _, w in BACKGROUND_PORTS])
    return ports, udp, weight / weight.sum()


def _background(ctx: Context, v: Volumes, dom: sc.Pool, foreign: sc.Pool) -> PacketColumns:
    """Steady radiation: many ports, many countries, heavy-tailed sources."""
    rng = ctx.rng("background")
    n_src = ctx.count(v.background_sources, 50)
    n_dom = max(5, round(n_src * v.domestic_share))
    srcs = np.concatenate([dom.take(n_dom), foreign.take(n_src - n_dom)])
    hops = np.concatenate([sc.hops(rng, n_dom, True), sc.hops(rng, n_src - n_dom, False)])
    os_kind = rng.choice(3, n_src, p=[0.55, 0.25, 0.2])
    ports, udp, weight = _port_table()
    pref = rng.choice(len(ports), n_src, p=weight)
    day = sc.daily(rng, ctx, v.background)
    who = sc.pick(rng, n_src, day.size)
    any_port = rng.choice(len(ports), day.size, p=weight)
    slot = np.where(rng.random(day.size) < 0.75, pref[who], any_port)
    long_tail = rng.random(day.size) < TAIL_SHARE
    random_port = rng.integers(1, 65536, day.size)
    random_port[np.isin(random_port, [23, 2323, 52869])] += 1000
    dport = np.where(long_tail, random_port, ports[slot])
    is_udp = np.where(long_tail, rng.random(day.size) < 0.15, udp[slot])
    ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
    t, u = np.flatnonzero(~is_udp), np.flatnonzero(is_udp)
    return concat([
        tr.host_syns(rng, ts[t], srcs[who[t]], dst[t], dport[t], os_kind[who[t]], hops[who[t]]),
        tr.udp_probes(rng, ts[u], srcs[who[u]], dst[u], dport[u], hops[who[u]]),
    ])  # fmt: skip


def _telnet_baseline(ctx: Context, name: str, addrs: U32, rate: float,
                     domestic: bool) -> PacketColumns:  # fmt: skip
    """Steady Telnet scanning (23, 2323), two thirds by Mirai bots, the rest by other tools."""
    rng = ctx.rng(name)
    n = len(addrs)
    mirai = rng.random(n) < 0.65
    sport, win = rng.integers(1024, 65536, n), rng.integers(0, 65536, n)
    hops = sc.hops(rng, n, domestic)
    day = sc.daily(rng, ctx, rate)
    who = sc.pick(rng, n, day.size)
    ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
    dport = np.where(rng.random(day.size) < 0.1, 2323, 23)
    m, o = np.flatnonzero(mirai[who]), np.flatnonzero(~mirai[who])
    wm, wo = who[m], who[o]
    return concat([
        tr.mirai_syns(rng, ts[m], addrs[wm], dst[m], dport[m], sport[wm], win[wm], hops[wm]),
        tr.host_syns(rng, ts[o], addrs[wo], dst[o], dport[o], 0, hops[wo]),
    ])  # fmt: skip


def _surge(ctx: Context, v: Volumes, groups: tuple[Bots, ...]) -> PacketColumns:
    """The infected routers' Mirai Telnet scans and 52869 SYNs, from the onset on."""
    rng = ctx.rng("surge")
    parts = []
    for g in groups:
        day, b = sc.per_bot_day(rng, g.active & g.telnet, v.bot_rate)
        ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
        dport = np.where(rng.random(day.size) < 0.1, 2323, 23)
        parts.append(tr.mirai_syns(rng, ts, g.addrs[b], dst, dport, g.sport[b], g.win[b],
                                   g.hops[b]))  # fmt: skip
        day, b = sc.per_bot_day(rng, g.active & g.upnp, v.upnp_rate)
        ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
        parts.append(tr.host_syns(rng, ts, g.addrs[b], dst, 52869, 0, g.hops[b]))
    return concat(parts)


def _upnp_baseline(ctx: Context, v: Volumes, dom: sc.Pool, foreign: sc.Pool) -> PacketColumns:
    """A trickle of 52869 probes all along, mostly from abroad."""
    rng = ctx.rng("upnp-baseline")
    addrs = np.concatenate([dom.take(5), foreign.take(40)])
    hops = np.concatenate([sc.hops(rng, 5, True), sc.hops(rng, 40, False)])
    day = sc.daily(rng, ctx, v.upnp_baseline)
    who = np.where(rng.random(day.size) < 0.15, rng.integers(0, 5, day.size),
                   rng.integers(5, 45, day.size))  # fmt: skip
    ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
    return tr.host_syns(rng, ts, addrs[who], dst, 52869, 0, hops[who])


def _scans(ctx: Context, v: Volumes, foreign: sc.Pool) -> PacketColumns:
    """ZMap, Masscan and Nmap sweeps of the whole sensor network from a few foreign hosts."""
    rng = ctx.rng("scans")
    table = np.array(SCAN_PORTS)
    parts = []
    for kind, rate, hours in (("zmap", v.zmap_scans, (1.0, 8.0)),
                              ("masscan", v.masscan_scans, (0.5, 6.0)),
                              ("nmap", v.nmap_scans, (0.2, 1.0))):  # fmt: skip
        n = ctx.count(rate * ctx.days, 1)
        hosts = foreign.take(6)
        host_hops = sc.hops(rng, 6, False)
        width = {"zmap": np.ones(n, np.int64), "masscan": rng.integers(1, 5, n)}.get(kind)
        ports = ([np.array(NMAP_PORTS[: v.nmap_ports])] * n if width is None
                 else [rng.permutation(table)[:k] for k in width.tolist()])  # fmt: skip
        ts, scan, dst, dport = sc.sweeps(ctx, rng, ports, hours)
        who = rng.integers(0, 6, n)[scan]
        sport = rng.integers(33000, 65279, n)[scan]
        src, hops = hosts[who], host_hops[who]
        if kind == "zmap":
            parts.append(tr.zmap_syns(rng, ts, src, dst, dport, hops))
        elif kind == "masscan":
            parts.append(tr.masscan_syns(rng, ts, src, dst, dport, sport, hops))
        else:
            parts.append(tr.nmap_syns(rng, ts, src, dst, dport, sport, hops))
    return concat(parts)


def _backscatter(ctx: Context, v: Volumes, dom: sc.Pool, foreign: sc.Pool) -> PacketColumns:
    """DoS victims (mostly abroad) answering floods that spoofed sensor addresses."""
    rng = ctx.rng("backscatter")
    n = ctx.count(v.dos_events * ctx.days, 2)
    victims = np.where(rng.random(n) < 0.15, dom.take(n), foreign.take(n))
    sizes = np.minimum(1 + rng.lognormal(5.0, 1.0, n).astype(np.int64), 5000)
    kind = rng.choice(3, n, p=[0.55, 0.25, 0.2])
    vport = rng.choice(np.array(DOS_PORTS), n)
    hops = sc.hops(rng, n, False)
    ts, ev = sc.spans(ctx, rng, sizes, (0.1, 3.0))
    dst = ctx.hosts(rng, ts.size)
    return tr.backscatter(rng, ts, victims[ev], vport[ev], dst, kind[ev], hops[ev])


def _pings_and_spoofs(ctx: Context, v: Volumes, foreign: sc.Pool) -> PacketColumns:
    """ICMP echo requests from abroad, and a handful of SYNs from private (spoofed) sources."""
    rng = ctx.rng("pings")
    addrs = foreign.take(ctx.count(200, 10))
    day = sc.daily(rng, ctx, v.echo)
    who = sc.pick(rng, addrs.size, day.size)
    hops = sc.hops(rng, addrs.size, False)
    ts, dst = tr.day_times(rng, ctx.start_ns, day), ctx.hosts(rng, day.size)
    pings = tr.icmp_echo(rng, ts, addrs[who], dst, hops[who])
    n = ctx.count(v.spoofed, 3)
    base = rng.choice(np.array([0x0A000000, 0xAC100000, 0xC0A80000], np.int64), n)
    src = (base + rng.integers(1, 1 << 16, n)).astype(np.uint32)
    ts = tr.day_times(rng, ctx.start_ns, rng.integers(0, ctx.days, n))
    dport = rng.choice(np.array([445, 80, 8080]), n)
    spoofs = tr.host_syns(rng, ts, src, ctx.hosts(rng, n), dport, 0, 0, label=tr.SPOOFED)
    return concat([pings, spoofs])


def _bot_sources(groups: tuple[Bots, ...], role: str) -> Sources:
    """Bots of ``groups`` that scan ``role`` (``telnet`` or ``upnp``), active per day."""
    return Sources(
        np.concatenate([g.addrs for g in groups]),
        np.concatenate([g.hops for g in groups]),
        np.concatenate([g.active & getattr(g, role) for g in groups], axis=1),
    )


def _always(ctx: Context, addrs: U32, domestic: bool) -> Sources:
    rng = ctx.rng("always")
    return Sources(addrs, sc.hops(rng, addrs.size, domestic),
                   np.ones((ctx.days, addrs.size), bool))  # fmt: skip


def _plans(ctx: Context, v: Volumes, bots: Bots, abroad: Bots, telnet_abroad: U32,
           benign: U32) -> list[SessionPlan]:  # fmt: skip
    """Who opens the responder sessions: bots, Telnet scanners, a legitimate UPnP user."""
    rng = ctx.rng("session-plans")
    onset = ctx.day_of(v.onset)
    late = max(onset, ctx.days - ctx.days // 6 - 1)
    scanners = _always(ctx, telnet_abroad, False)
    telnet = _bot_sources((bots,), "telnet")
    telnet = Sources(np.concatenate([telnet.addrs, scanners.addrs]),
                     np.concatenate([telnet.hops, scanners.hops]),
                     np.concatenate([telnet.active, scanners.active], axis=1))  # fmt: skip
    return [
        *plan_sessions(ctx, rng, "exploit.realtek-miniigd", ctx.count(v.realtek_sessions, 6),
                       _bot_sources((bots, abroad), "upnp"), len(REALTEK_VARIANTS), onset),
        *plan_sessions(ctx, rng, "benign.upnp", ctx.count(v.benign_sessions, 1),
                       _always(ctx, benign, False), 1),
        *plan_sessions(ctx, rng, "exploit.huawei-hg532", 1, _bot_sources((abroad,), "upnp"),
                       1, late),
        *plan_sessions(ctx, rng, "telnet.login", ctx.count(v.telnet_sessions, 4), telnet, 4),
    ]  # fmt: skip


def _pool_sizes(ctx: Context, v: Volumes) -> tuple[int, int]:
    """Domestic and foreign addresses the build takes (with room to spare)."""
    n_bg = ctx.count(v.background_sources, 50)
    n_dom_bg = max(5, round(n_bg * v.domestic_share))
    events = ctx.count(v.dos_events * ctx.days, 2)
    domestic = (n_dom_bg + ctx.count(v.telnet_domestic_sources, 5) + ctx.count(v.bots, 30)
                + ctx.count(v.upnp_only_bots, 5) + 5 + events)  # fmt: skip
    foreign = (n_bg - n_dom_bg + ctx.count(v.telnet_foreign_sources, 20)
               + ctx.count(v.upnp_foreign_bots, 4) + 40 + 18 + events + ctx.count(200, 10)
               + ctx.count(v.benign_sessions, 1))  # fmt: skip
    return domestic + 16, foreign + 16


def build(ctx: Context, volumes: Volumes) -> Traffic:
    """All the scenario's packets (unordered) and its responder session records."""
    v = volumes
    dom_addrs, foreign_addrs = ctx.addresses(ctx.rng("addresses"), *_pool_sizes(ctx, v))
    dom, foreign = sc.Pool(dom_addrs), sc.Pool(foreign_addrs)
    parts = [_background(ctx, v, dom, foreign)]
    telnet_abroad = foreign.take(ctx.count(v.telnet_foreign_sources, 20))
    telnet_home = dom.take(ctx.count(v.telnet_domestic_sources, 5))
    n_bots, n_only = ctx.count(v.bots, 30), ctx.count(v.upnp_only_bots, 5)
    bots = _bots(ctx, "bots", dom.take(n_bots + n_only), v, n_bots / (n_bots + n_only))
    abroad = _bots(ctx, "bots-abroad", foreign.take(ctx.count(v.upnp_foreign_bots, 4)), v, 0.0)
    parts += [
        _telnet_baseline(ctx, "telnet-foreign", telnet_abroad, v.telnet_foreign, False),
        _telnet_baseline(ctx, "telnet-domestic", telnet_home, v.telnet_domestic, True),
        _surge(ctx, v, (bots, abroad)), _upnp_baseline(ctx, v, dom, foreign),
        _scans(ctx, v, foreign), _backscatter(ctx, v, dom, foreign),
        _pings_and_spoofs(ctx, v, foreign),
    ]  # fmt: skip
    benign = foreign.take(ctx.count(v.benign_sessions, 1))
    plans = _plans(ctx, v, bots, abroad, telnet_abroad, benign)
    packets, records = build_sessions(ctx.rng("sessions"), plans)
    return Traffic(concat([*parts, packets]), records)


_ONSET = date(2017, 11, 1)
_TRACKED = tuple(sorted({k for k, _ in BACKGROUND_PORTS} | set(SURGE_PORTS),
                        key=lambda k: (k.split("/")[1], int(k.split("/")[0]))))  # fmt: skip
_SCENARIO = {
    "sensor_network": "203.0.113.0/24", "home_country": "JP", "tracked": _TRACKED,
    "onsets": {"52869/tcp": _ONSET.isoformat(), "23/tcp": _ONSET.isoformat(),
               "2323/tcp": _ONSET.isoformat()},
    "onset_segment": "domestic",
    "no_surge": (("23/tcp", "foreign"), ("2323/tcp", "foreign"), ("445/tcp", "domestic"),
                 ("445/tcp", "foreign"), ("22/tcp", "foreign"), ("5060/udp", "foreign")),
}  # fmt: skip
FULL = Volumes(onset=_ONSET)
SMOKE_VOLUMES = Volumes(
    onset=_ONSET, background=1500, background_sources=600, telnet_foreign=300,
    telnet_foreign_sources=60, telnet_domestic=15, telnet_domestic_sources=10, bots=150,
    upnp_only_bots=30, upnp_foreign_bots=20, growth_days=0.3, zmap_scans=0.5,
    masscan_scans=0.5, nmap_scans=0.5, nmap_ports=3, dos_events=1.5, echo=10, spoofed=3,
    realtek_sessions=6, benign_sessions=1, telnet_sessions=4,
)  # fmt: skip
NPA2017 = Scenario(
    name="npa-2017", first_day=date(2017, 10, 1), days=79,
    summary="52869/TCP UPnP exploitation and Mirai Telnet scanning from Japan, 2017-10-01..12-18",
    build=partial(build, volumes=FULL), **_SCENARIO,  # type: ignore[arg-type]
)  # fmt: skip
SMOKE = Scenario(
    name="smoke", first_day=date(2017, 10, 31), days=2,
    summary="npa-2017's mechanisms over two days around the onset, a few thousand packets",
    build=partial(build, volumes=SMOKE_VOLUMES), **_SCENARIO,  # type: ignore[arg-type]
)  # fmt: skip
SCENARIOS: tuple[Scenario, ...] = (NPA2017, SMOKE)
"""The scenarios this module declares (registered in :data:`teiten.simulate.SCENARIOS`)."""
