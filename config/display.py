"""Human-readable money and durations, for the admin and the operator commands."""

from __future__ import annotations

from decimal import Decimal


def human_duration(milliseconds: int | float | None) -> str:
    """`850 ms`, `12.4 s`, `3 min 5 s`, `2 h 4 min`; `-` when unknown."""
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{int(milliseconds)} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def usd(amount: Decimal | float | str | None) -> str:
    """An amount in USD with 4 to 6 significant decimals: `0.0123 USD`, `0.000042 USD`,
    `1.2500 USD`; `-` when unknown."""
    if amount is None:
        return "-"
    value = Decimal(str(amount))
    if value == 0:
        return "0.0000 USD"
    magnitude = abs(value)
    # Small sums keep their first significant digits (up to 6 decimals); larger ones show 4.
    places = 4 if magnitude >= Decimal("0.01") else 6
    return f"{value:.{places}f} USD"
