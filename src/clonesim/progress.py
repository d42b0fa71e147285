"""The progress bar shared by the CLI and the Python API (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def replicate_progress(console: Console | None = None, disable: bool = False,
                       unit: str = "replicates") -> Progress:
    """A bar counting replicates (or another ``unit``), with elapsed time and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=disable,
    )


def label(text: str) -> str:
    """A run name shown literally (never read as rich markup)."""
    return escape(text)


def sweep_progress(console: Console | None = None, disable: bool = False) -> Progress:
    """Bars for a sweep: one counting shards, one counting replicates, each with its
    elapsed time and ETA (add tasks with a ``unit`` field)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=console, disable=disable,
    )
