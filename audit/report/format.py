"""Number formatting shared by every renderer (HTML, Markdown, console)."""

from __future__ import annotations


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "undefined"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "undefined" if value is None else f"{100 * value:.{digits}f}%"


def ci_text(ci: tuple[float, float] | list[float] | None, digits: int = 3) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
