"""The one cron grammar: five fields, or an `@daily`-style macro; IANA time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from celery.schedules import crontab
from cron_descriptor import Options, get_description
from croniter import croniter

from config.errors import FieldInvalid

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


# An expression must fire at least once in this many years from now (29 February fits).
OCCURRENCE_HORIZON_YEARS = 8


class CronError(ValueError):
    pass


def normalize_cron(expression: str) -> str:
    """The five-field form of a valid expression; CronError with a clear message otherwise."""
    text = " ".join(str(expression).split())
    if not text:
        raise CronError("The cron expression is empty.")
    if text.startswith("@"):
        try:
            return MACROS[text.lower()]
        except KeyError:
            names = ", ".join(sorted(MACROS))
            raise CronError(f"Unknown cron macro '{text}'. Use one of {names}.") from None
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); "
            f"got {len(fields)} in '{text}'."
        )
    try:
        croniter(text)
        # The beat scheduler parses the same fields; reject what it would not accept.
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        schedule = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            nowfun=_utc_now,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise CronError(f"Invalid cron expression '{text}': {error}") from None
    _require_occurrence(text, schedule, day_of_month, day_of_week)
    return text


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _require_occurrence(text: str, schedule: crontab, day_of_month: str, day_of_week: str) -> None:
    """Refuse an expression beat could never fire (`0 0 30 2 *`): beat would fail on it at
    every tick. Beat computes the next time itself, so ask its own crontab."""
    horizon = timedelta(days=365 * OCCURRENCE_HORIZON_YEARS + 2)
    try:
        remaining = schedule.remaining_estimate(_utc_now())
    except (RuntimeError, ValueError, OverflowError):
        remaining = None
    if remaining is not None and remaining <= horizon:
        return
    if day_of_month != "*" and day_of_week != "*":
        reason = (
            "no date matches its day-of-month, month and day-of-week fields together "
            "(a day must match both the day of month and the day of week)"
        )
    else:
        reason = (
            "no date matches its day-of-month and month fields (February has at most 29 "
            "days; April, June, September and November have 30)"
        )
    raise CronError(
        f"The cron expression '{text}' never fires in the next {OCCURRENCE_HORIZON_YEARS} "
        f"years: {reason}."
    )


def cron_fields(expression: str) -> dict[str, str]:
    """The normalized expression split into django-celery-beat CrontabSchedule fields."""
    minute, hour, day_of_month, month_of_year, day_of_week = normalize_cron(expression).split(" ")
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def describe_cron(expression: str | None) -> str:
    """An English description, e.g. `0 9 * * *` → `At 09:00 AM`; `Invalid schedule` otherwise."""
    try:
        normalized = normalize_cron(expression or "")
        options = Options()
        options.verbose = False
        return get_description(normalized, options)
    except Exception:  # the describer raises several exception types on odd input
        return "Invalid schedule"


def next_run_times(expression: str, tz_name: str, count: int = 3, after: datetime | None = None):
    zone = ZoneInfo(validate_timezone(tz_name))
    start = (after or datetime.now(zone)).astimezone(zone)
    iterator = croniter(normalize_cron(expression), start)
    return [iterator.get_next(datetime) for _ in range(count)]


def previous_run_time(expression: str, tz_name: str, at: datetime) -> datetime:
    """The latest time the expression was due at or before `at`, computed in the zone."""
    zone = ZoneInfo(validate_timezone(tz_name))
    iterator = croniter(normalize_cron(expression), at.astimezone(zone) + timedelta(seconds=1))
    return iterator.get_prev(datetime)


def validate_timezone(name: str) -> str:
    """The name when it is an IANA time zone; CronError otherwise. Files that live among the
    zone data without being zones (`localtime`, `posixrules`, `Factory`, `posix/...`) are
    refused: they mean whatever the host says, or nothing."""
    if not isinstance(name, str) or name not in _zone_names():
        raise CronError(f"Unknown time zone '{name}'. Use an IANA name such as 'Europe/Paris'.")
    return name


def require_cron(expression: str, path: list[str | int]) -> str:
    try:
        return normalize_cron(expression)
    except CronError as error:
        raise FieldInvalid(path, str(error)) from None


def require_timezone(name: str, path: list[str | int]) -> str:
    try:
        return validate_timezone(name)
    except CronError as error:
        raise FieldInvalid(path, str(error)) from None


# Present in zone data directories but not time zones.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory", "leapseconds", "tzdata.zi"})
_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        names = set(available_timezones()) | {"UTC"}
        _ZONES = frozenset(
            name
            for name in names
            if name not in NOT_ZONES and not name.startswith(("posix/", "right/"))
        )
    return _ZONES
