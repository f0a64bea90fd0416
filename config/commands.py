"""What the operator commands share: the acting user, exit codes and a console for progress.

Exit codes: 0 the work was done; 1 the work failed (`CommandError`); 2 the command was used
wrongly (`UsageError`, and argparse's own errors).
"""

from __future__ import annotations

from typing import IO, Any, cast

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser, OutputWrapper
from rich.console import Console

from config.access import trusted_local_user
from config.errors import DomainError

USAGE = 2


class UsageError(CommandError):
    """Bad arguments: exit code 2, like argparse's own errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=USAGE)


def add_user_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--user",
        metavar="USERNAME",
        help="Act as this user: they must be allowed to see the rows (staff see all). "
        "Default: the first superuser.",
    )


def command_user(username: str | None) -> Any:
    """The user a command acts as (`--user`, else the first active superuser)."""
    if username:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise UsageError(f"No active user named '{username}'.")
        return user
    user = trusted_local_user()
    if user is None:
        raise UsageError(
            "No superuser exists to act as: pass --user, or create one (./scripts/start does)."
        )
    return user


def failure(error: DomainError) -> CommandError:
    """A service's refusal as a failed command (exit code 1), with its message."""
    return CommandError(error.message)


def console_for(stdout: OutputWrapper) -> Console:
    """A rich console writing where the command writes (a terminal gets live displays; a pipe
    or a test gets plain lines)."""
    # OutputWrapper is a text stream (a TextIOBase), which the stubs do not count as an IO[str].
    return Console(file=cast(IO[str], stdout), highlight=False, soft_wrap=True)
