"""Decide when packets arrive and from which sources: daily counts, sweeps, infection growth.

These helpers turn rates into per-packet day indices, timestamps and source
indices, all as numpy arrays: Poisson counts per day with a mild weekly
pattern, heavy-tailed source activity, sweeps of the whole sensor network,
and an infection that spreads from an onset day and then plateaus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from teiten.simulate.traffic import NS_PER_DAY

if TYPE_CHECKING:
    from teiten.simulate.scenario import Context

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Gen = np.random.Generator


@dataclass
class Pool:
    """Addresses handed out in order, so that roles get disjoint sources."""

    addrs: U32
    used: int = 0

    def take(self, n: int) -> U32:
        """The next ``n`` unused addresses."""
        out = self.addrs[self.used : self.used + n]
        if out.shape[0] < n:
            raise RuntimeError("address pool exhausted")
        self.used += n
        return out


def hops(rng: Gen, n: int, domestic: bool) -> I64:
    """Path lengths: shorter from home-country sources."""
    return rng.integers(3, 12, n) if domestic else rng.integers(8, 24, n)


def weekly(ctx: Context) -> npt.NDArray[np.float64]:
    """A mild weekly pattern: weekends about 7 % quieter."""
    dow = (np.arange(ctx.days) + ctx.first_day.weekday()) % 7
    return np.where(dow >= 5, 0.93, 1.0 + 0.02 * np.sin(dow))


def daily(rng: Gen, ctx: Context, rate: float) -> I64:
    """Day index of each packet: Poisson(``rate`` × scale × weekly factor) per day."""
    return np.repeat(np.arange(ctx.days), rng.poisson(rate * ctx.scale * weekly(ctx)))


def pick(rng: Gen, n_sources: int, n: int) -> I64:
    """``n`` draws among ``n_sources`` sources whose activity is heavy-tailed."""
    weight = rng.pareto(1.2, n_sources) + 0.05
    return rng.choice(n_sources, size=n, p=weight / weight.sum())


def infected(ctx: Context, rng: Gen, n: int, onset_day: int, growth_days: float) -> Bools:
    """(day, bot) → bot ``i`` is infected by then and online that day.

    Bots are infected in index order; the count rises as
    ``n · (1 − exp(−(k+1)/growth_days))`` on day ``k`` after the onset, then
    plateaus. An infected bot is online 90 % of days.
    """
    k = np.arange(ctx.days) - onset_day
    count = np.where(k >= 0, n * (1 - np.exp(-(k + 1) / growth_days)), 0)
    return (np.arange(n)[None, :] < count[:, None]) & (rng.random((ctx.days, n)) < 0.9)


def per_bot_day(rng: Gen, active: Bools, rate: float) -> tuple[I64, I64]:
    """Day and bot of each packet: Poisson(``rate``) packets per active bot-day."""
    counts = rng.poisson(rate * active)
    d, b = np.nonzero(counts)
    reps = counts[d, b]
    return np.repeat(d, reps), np.repeat(b, reps)


def spans(ctx: Context, rng: Gen, sizes: I64, hours: tuple[float, float]) -> tuple[I64, I64]:
    """Times and event index for events of ``sizes`` packets spread over their duration.

    Each event starts at a random time and lasts a uniform number of
    ``hours``; it ends inside the period.
    """
    n = len(sizes)
    dur = (rng.uniform(hours[0], hours[1], n) * 3.6e12).astype(np.int64)
    room = ctx.days * NS_PER_DAY - dur
    start = ctx.start_ns + (rng.random(n) * room).astype(np.int64)
    event = np.repeat(np.arange(n), sizes)
    offset = (rng.random(event.size) * dur[event]).astype(np.int64)
    return start[event] + offset - offset % 1000, event


def sweeps(ctx: Context, rng: Gen, ports: list[I64], hours: tuple[float, float]) -> tuple[
        I64, I64, U32, I64]:  # fmt: skip
    """Scans that probe every sensor address on each of their ``ports``, in random order.

    Returns time, scan index, destination address and destination port per packet.
    """
    size = ctx.network.num_addresses
    n_ports = np.array([p.size for p in ports], np.int64)
    ts, scan = spans(ctx, rng, size * n_ports, hours)
    slot = np.concatenate([rng.permutation(size * k) for k in n_ports.tolist()] or [scan])
    dst = (int(ctx.network.network_address) + slot % size).astype(np.uint32)
    flat = np.concatenate([*ports, np.zeros(0, np.int64)])
    first = np.cumsum(n_ports) - n_ports
    dport = flat[first[scan] + slot // size] if flat.size else scan
    return ts, scan, dst, dport
