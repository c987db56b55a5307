"""Errors a user can act on: one line naming the file, the line or field, and what is expected."""


class BenchError(Exception):
    """Bad input. The CLI prints the message on one line and exits with status 2."""


class Unavailable(Exception):
    """A candidate that cannot run here (not installed, not downloaded, no network).

    Reported as `skipped`, never as a crash: `reason` says why, `fix` says how to make it available.
    """

    def __init__(self, reason: str, fix: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def one_line(e: BaseException) -> str:
    """An exception as one short line for a report cell or a progress message."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def refuse_unknown(label: str, item: dict, allowed, prefix: str = "") -> None:
    """A misspelt field would otherwise be ignored without a word."""
    text = unknown_field(item, allowed, prefix)
    if text:
        raise BenchError(f"{label}: {text}")


def unknown_field(item: dict, allowed, prefix: str = "") -> str | None:
    """What refuse_unknown says about `item`, without the file's label; None when every field is allowed."""
    unknown = sorted(set(item) - set(allowed))
    return f"unknown field '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(allowed))})" if unknown else None
