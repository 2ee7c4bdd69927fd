"""Noise cancellation, after Diffy: differences two instances of the same release show are noise.

For one exchange, the primary and secondary responses come from the baseline release (twice),
the candidate's from the new one. Every path where primary and secondary differ is noisy; a
candidate difference at a noisy path, or below one, is reported apart as noise. Paths are matched
exactly (list indices included), so noise in ``body.items[3].ts`` says nothing about
``body.items[4].ts``; a noisy ``response`` (the secondary also failed to answer) or ``exchange``
(it also lacks the exchange) covers those exchange-level changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DiffConfig
from .diff import ExchangeDiff, diff_exchange
from .exchange import Exchange
from .usage import IgnoreUsage

_DEFAULT = DiffConfig()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A candidate's differences, split into real ones and noise (either None when empty)."""

    real: ExchangeDiff | None
    noise: ExchangeDiff | None

    def to_json(self) -> dict:
        return {
            "real": self.real.to_json() if self.real else None,
            "noise": self.noise.to_json() if self.noise else None,
        }


def classify(
    primary: Exchange | None,
    secondary: Exchange | None,
    candidate: Exchange | None,
    config: DiffConfig = _DEFAULT,
    usage: IgnoreUsage | None = None,
) -> Verdict:
    """Compare ``candidate`` with ``primary`` and set apart what ``secondary`` shows is noise."""
    raw = diff_exchange(primary, candidate, config, usage)
    if raw is None:
        return Verdict(None, None)
    baseline_noise = diff_exchange(primary, secondary, config)
    noisy = set(baseline_noise.paths) if baseline_noise else set()
    real, noise = [], []
    for change in raw.changes:
        path = change.path
        is_noise = any(path[:n] in noisy for n in range(1, len(path) + 1))
        (noise if is_noise else real).append(change)
    return Verdict(
        ExchangeDiff(raw.exchange_id, tuple(real)) if real else None,
        ExchangeDiff(raw.exchange_id, tuple(noise)) if noise else None,
    )
