"""Tables printed whole: a row is never cut to the terminal's width."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def whole_table_console(table: Table) -> Console:
    """A console as wide as ``table`` needs (at least the terminal's), so no cell is cut short
    -- a date keeps its zone -- and a narrow terminal wraps the long lines instead. Pipes get
    whole lines too (rich would assume 80 columns)."""
    console = Console()
    needed = console.measure(table, options=console.options.update_width(10_000)).maximum
    return Console(width=needed) if needed > console.width else console
