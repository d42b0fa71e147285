"""The ``clonesim`` command line: a thin typer layer over :mod:`clonesim.api`.

User errors (bad configs, bad options, existing outputs) print one line to
stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from clonesim import api
from clonesim.analysis.summary import schedule_summary
from clonesim.batch.dask_backend import DaskSettings, dask_executor, open_client
from clonesim.batch.shards import run_sweep, sweep_status
from clonesim.batch.slurm import SlurmSettings, prepare_slurm_array
from clonesim.batch.sweep import SweepPoint, expand_sweep, short_labels
from clonesim.config import load_config
from clonesim.config.errors import ClonesimError
from clonesim.engine import runner
from clonesim.io.run_dir import read_table
from clonesim.model import compile_model
from clonesim.model.describe import describe_model
from clonesim.progress import label, replicate_progress, sweep_progress

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Stochastic, clone-resolved simulation of tumour evolution under targeted therapy.",
)
console = Console(stderr=True)

USER_ERROR = 2


def _fail(message: str) -> None:
    # The message echoes user input (paths, keys, values): print it literally, not as markup.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(USER_ERROR)


class _StopAfterBlock:
    """Ctrl-C asks the run to stop at the next block boundary; a second Ctrl-C stops at once.

    A KeyboardInterrupt raised asynchronously inside numba's machinery can surface
    as a SystemError; raising it from a block boundary instead keeps the clean-up
    (and the exit status 130) reliable.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopAfterBlock:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        console.print("stopping after the current block (Ctrl-C again to stop now)")

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


def _compile_then_show(progress: Progress, compile_here: bool) -> None:
    """Compile (or load) the kernels under a status line, then show the progress bar, so
    the bar's clock and ETA count simulation only."""
    if compile_here:
        with console.status("compiling the engine (cached after the first run)"):
            runner.compile_kernels()
    progress.start()


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    replicates: Annotated[int | None, typer.Option(help="Virtual patients (default: config).")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (default: config, else fresh).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/NAME).")] = None,
    threads: Annotated[int | None, typer.Option(help="Numba threads (default: all cores).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Simulate CONFIG and write a run directory of Parquet tables."""
    try:
        loaded = load_config(config)
        num_points = len(expand_sweep(loaded))  # validates every sweep point up front
        per_point = replicates if replicates is not None else loaded.replicates
        total = per_point * num_points
        target = out if out is not None else Path("runs") / loaded.name
        progress = replicate_progress(console, disable=quiet or total <= 0)
        task = progress.add_task(label(loaded.name), total=total)

        stop = _StopAfterBlock()

        def start() -> None:
            _compile_then_show(progress, compile_here=not quiet)

        def block_done(done: int) -> None:
            progress.advance(task, done)
            stop.check()

        try:
            # The bar starts only once the options are checked and the directory is ready,
            # so a refused run prints its one error line and nothing else.
            with stop:
                path = api.run_to_directory(
                    loaded, target, replicates=replicates, seed=seed, threads=threads,
                    overwrite=overwrite, on_start=start, on_block=block_done,
                )
        finally:
            progress.stop()
    except ClonesimError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        console.print("interrupted: nothing was written (a previous run in the directory is intact)")
        raise typer.Exit(130) from None
    info = api.read_run_info(path)
    seconds = info["timings"]["simulate_and_write_seconds"]
    if not quiet and num_points == 1:
        console.print(_summary_table(read_table(path, "patients")))
    what = f"{per_point} replicates" if num_points == 1 else (
        f"{num_points} points x {per_point} replicates; group the tables by 'point'")
    console.print(
        f"wrote {escape(str(path))} ({what}, seed {info['seed']}, {seconds:.1f} s, "
        f"{info['timings']['threads']} threads)",
        highlight=False, soft_wrap=True,
    )


def _summary_table(patients: pl.DataFrame) -> Group:
    """The per-schedule summary (clonesim.analysis.summary) as terminal tables."""
    summary = schedule_summary(patients)
    drugs = [c for c in summary.columns if c.startswith("drug_days_")]
    outcome = Table(title="Per schedule (TTP: time to progression)")
    outcome.add_column("schedule", no_wrap=True)
    for column in ("progressed", "median TTP (mo)", "PR+CR"):
        outcome.add_column(column, justify="right")
    outcome.add_column("top mechanism at progression", no_wrap=True)
    cost = Table(title="Mean drug-days (standard doses given)")
    cost.add_column("schedule", no_wrap=True)
    for drug in drugs:
        cost.add_column(drug.removeprefix("drug_days_"), justify="right")
    for row in summary.iter_rows(named=True):
        months = row["median_ttp_months"]
        mechanism = row["top_mechanism"]
        outcome.add_row(
            Text(str(row["schedule"])),
            f"{row['progressed_share']:.0%}",
            "not reached" if months is None else f"{months:.1f}",
            f"{row['PR_share'] + row['CR_share']:.0%}",
            Text("-" if mechanism is None else f"{mechanism} ({row['top_mechanism_share']:.0%})"),
        )
        cost.add_row(Text(str(row["schedule"])), *[f"{row[d]:.0f}" for d in drugs])
    return Group(outcome, cost) if drugs else Group(outcome)


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML config file (with or without a sweep section).")],
    out: Annotated[Path, typer.Option(help="Sweep directory (re-run to resume).")],
    replicates: Annotated[int | None, typer.Option(help="Replicates per point (default: config).")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (default: config, else fresh).")] = None,
    threads: Annotated[int | None, typer.Option(help="Numba threads (default: all cores).")] = None,
    shard_index: Annotated[int | None, typer.Option(help="Run only shards i, i+N, ... (0-based).")] = None,
    num_shards: Annotated[int | None, typer.Option(help="N, the number of shard groups.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a different sweep in OUT.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    backend: Annotated[str, typer.Option(help="in-process (numba threads) or dask.")] = "in-process",
    scheduler: Annotated[str | None, typer.Option(help="dask: a running scheduler's address.")] = None,
    workers: Annotated[int | None, typer.Option(help="dask: LocalCluster workers, or jobqueue jobs.")] = None,
    jobqueue: Annotated[str | None, typer.Option(help="dask: slurm, pbs, sge or lsf.")] = None,
    queue: Annotated[str | None, typer.Option(help="dask-jobqueue: queue/partition.")] = None,
    cores: Annotated[int | None, typer.Option(help="dask-jobqueue: cores per job.")] = None,
    memory: Annotated[str | None, typer.Option(help="dask-jobqueue: memory per job, e.g. 8GB.")] = None,
    walltime: Annotated[str | None, typer.Option(help="dask-jobqueue: wall time per job.")] = None,
) -> None:
    """Run CONFIG's sweep shard by shard into OUT; re-running resumes (only missing or
    corrupt shards run), and --shard-index/--num-shards split it across jobs. With
    --backend dask the shards run on a Dask cluster: a LocalCluster by default, a running
    scheduler (--scheduler), or Slurm/PBS/SGE/LSF jobs (--jobqueue; unset settings come
    from dask's jobqueue config file)."""
    if backend not in ("in-process", "dask"):
        _fail(f"--backend: unknown {backend!r}; use in-process or dask")
    dask_options = (scheduler, workers, jobqueue, queue, cores, memory, walltime)
    if backend != "dask" and any(option is not None for option in dask_options):
        _fail("--scheduler, --workers, --jobqueue, --queue, --cores, --memory and --walltime "
              "need --backend dask")
    client = None
    try:
        progress = sweep_progress(console, disable=quiet)
        shards_task = progress.add_task(label(config.stem), total=None, unit="shards")
        replicates_task = progress.add_task("", total=None, unit="replicates")

        def start(todo: list) -> None:
            progress.update(shards_task, total=len(todo))
            progress.update(replicates_task, total=sum(shard.replicates for shard in todo))
            # Dask workers compile for themselves; compiling here would only cost time.
            _compile_then_show(progress, compile_here=not quiet and bool(todo)
                               and backend == "in-process")

        executor = None
        if backend == "dask":
            settings = DaskSettings(scheduler, workers, jobqueue, queue, cores, memory, walltime)
            client = open_client(settings)
            executor = dask_executor(client, threads_per_task=threads or 1)
        try:
            report = run_sweep(config, out, replicates=replicates, seed=seed, threads=threads,
                               overwrite=overwrite, shard_index=shard_index, num_shards=num_shards,
                               on_start=start,
                               on_shard=lambda _shard: progress.advance(shards_task, 1),
                               on_replicates=lambda done: progress.advance(replicates_task, done),
                               executor=executor)
        finally:
            progress.stop()
            if client is not None:
                client.close()
    except ClonesimError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        console.print("interrupted: finished shards are kept; run the same command to resume")
        raise typer.Exit(130) from None
    state = "complete" if report.complete else "incomplete (other shards still to run)"
    rate = report.replicates / report.seconds if report.seconds > 0 else 0.0
    console.print(
        f"{escape(str(report.out))}: {report.ran} shards run, {report.skipped} already complete"
        f"{f', {report.redone} redone' if report.redone else ''}; sweep of {report.shards} shards "
        f"{state}; {report.seconds:.1f} s, {rate:,.0f} replicate-schedules/s, "
        f"{report.bytes_on_disk / 1e6:.1f} MB on disk",
        highlight=False, soft_wrap=True,
    )


@app.command("slurm-script")
def slurm_script(
    config: Annotated[Path, typer.Argument(help="YAML config file (with or without a sweep section).")],
    out: Annotated[Path, typer.Option(help="Sweep directory (on a filesystem the nodes share).")],
    num_shards: Annotated[int, typer.Option(help="Array tasks; task i runs shards i, i+N, ...")],
    script: Annotated[Path | None, typer.Option(help="Script path (default OUT/slurm/sweep.sbatch).")] = None,
    replicates: Annotated[int | None, typer.Option(help="Replicates per point (default: config).")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (default: config, else fresh).")] = None,
    cpus_per_task: Annotated[int, typer.Option(help="Cores per task (numba threads).")] = 1,
    mem: Annotated[str | None, typer.Option(help="Memory per task, e.g. 4G.")] = "4G",
    time_limit: Annotated[str | None, typer.Option("--time", help="Wall time per task.")] = "04:00:00",
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a different sweep in OUT.")] = False,
) -> None:
    """Write an sbatch job-array script for CONFIG's sweep (submit it with sbatch); check the
    result with `clonesim status OUT`."""
    settings = SlurmSettings(num_shards=num_shards, cpus_per_task=cpus_per_task, memory=mem,
                             time=time_limit, partition=partition, account=account)
    try:
        path = prepare_slurm_array(config, out, settings, script=script, replicates=replicates,
                                   seed=seed, overwrite=overwrite)
    except ClonesimError as error:
        _fail(str(error))
    console.print(f"wrote {escape(str(path))}; submit it with: sbatch {escape(str(path))}",
                  highlight=False, soft_wrap=True)


@app.command()
def status(out: Annotated[Path, typer.Argument(help="Sweep directory.")]) -> None:
    """Check every shard of the sweep in OUT against its manifest; exit 1 unless complete."""
    try:
        state = sweep_status(out)
    except ClonesimError as error:
        _fail(str(error))
    console.print(
        f"{escape(str(state.out))}: {state.complete}/{state.shards} shards complete, "
        f"{len(state.missing)} missing, {len(state.corrupt)} corrupt; "
        f"{'run.json present' if state.has_run_json else 'no run.json yet'}",
        highlight=False, soft_wrap=True,
    )
    for kind, ids in (("missing", state.missing), ("corrupt", state.corrupt)):
        if ids:
            shown = ", ".join(ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
            console.print(f"{kind}: {shown}", highlight=False, soft_wrap=True)
    if not state.done:
        console.print("re-run the same `clonesim sweep` command (or the array job) to finish it")
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (from clonesim run or sweep).")],
    reference: Annotated[str | None, typer.Option(help="Schedule the others are compared with "
                                                       "(default: the first).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report directory (default: RUN_DIR/report).")] = None,
    replicates_shown: Annotated[int, typer.Option(help="Patients drawn one by one in the Muller "
                                                       "figure.")] = 3,
    pool: Annotated[bool, typer.Option(help="Treat a sweep's points as one virtual population "
                                            "(patient = point × replicate).")] = False,
) -> None:
    """Analyse RUN_DIR: Kaplan-Meier curves, median times, hazard ratios and log-rank tests
    against a reference schedule, paired comparisons on the shared virtual patients,
    mechanisms at progression, emergence, drug exposure and Muller plots; writes report.md,
    Parquet tables and PNG/SVG figures. With --pool, a sweep is one virtual population whose
    patients are its points' replicates (each point a patient type)."""
    # Imported here: lifelines, scipy and matplotlib would slow every other command's start.
    from clonesim.analysis.report import report as write_report

    try:
        with console.status("analysing the run and drawing the figures"):
            result = write_report(run_dir, reference=reference, out=out, replicates_shown=replicates_shown,
                                  pool=pool)
    except ClonesimError as error:
        _fail(str(error))
    out = Console()
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out = Console(width=140)  # a log file or pipe: no need to squeeze the tables into 80 columns
    for renderable in _report_tables(result, width=out.width):
        out.print(renderable)
    console.print(
        f"wrote {escape(str(result.out))}: report.md, {len(result.tables)} tables, "
        f"{len(result.figures) // 2} figures (PNG and SVG) in {result.seconds:.1f} s",
        highlight=False, soft_wrap=True,
    )


def _fits(renderables: list, width: int) -> bool:
    """Whether every table among ``renderables`` fits ``width`` columns unwrapped."""
    unlimited = Console(width=100_000)
    return all(unlimited.measure(t).maximum <= width for t in renderables if isinstance(t, Table))


def _report_tables(result, width: int | None = None) -> list:
    """The compact columns of the report's endpoint tables (renderables to print one by one),
    laid out to fit ``width`` columns.

    The first layout whose tables fit unwrapped (``width`` None: the first): one table per
    endpoint (a sweep's rows start with their swept values, short labels); for a sweep, one
    table per point, under a line of its swept values, below the endpoint's heading; the same with
    each table split in two, the comparison as a trial would make it (events, median, hazard
    ratio, log-rank p) and the paired one (mean difference; later, same, earlier). When none
    fits, the last, wrapped. Schedule names and swept values are never wrapped; a sweep's
    per-point tables share their column widths, so they read down like one table."""
    from rich import box
    from rich.cells import cell_len

    from clonesim.analysis.report import endpoint_table
    from clonesim.analysis.survival import ENDPOINT_LABELS

    def table(title: str | None, headers: list[str], rows: list[list[str]], keys: int,
              widths: list[int | None]) -> Table:
        grid = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                     collapse_padding=True)
        for i, header in enumerate(headers):  # keys (swept values, schedule): left-aligned, whole
            grid.add_column(Text(header), justify="left" if i <= keys else "right", no_wrap=i <= keys,
                            overflow="ellipsis" if i <= keys else "fold", min_width=widths[i])
        for row in rows:
            grid.add_row(*[Text(cell) for cell in row])
        return grid

    def layout(headers: list[str], rows: list[list[str]], title: str, by_point: bool, split: bool,
               aligned: bool) -> list:
        keys = headers.index("schedule")  # the columns before it identify a sweep's point
        groups: dict[str | None, list[list[str]]] = {}
        for row in rows:
            label = ", ".join(f"{h} = {v}" for h, v in zip(headers[:keys], row, strict=False))
            groups.setdefault(label if by_point else None, []).append(row[keys:] if by_point else row)
        if by_point:
            headers, keys = headers[keys:], 0
        if split:
            headers = [h.replace("/\n", "/") for h in headers]  # room for a one-line header
        paired = headers.index("log-rank p") + 1 if split else len(headers)
        parts = [list(range(paired))]
        parts += [[*range(keys + 1), *range(paired, len(headers))]] if split else []
        every = [row for group in groups.values() for row in group]
        natural = [max(cell_len(line) for text in [header, *(row[i] for row in every)]
                       for line in text.split("\n")) for i, header in enumerate(headers)]
        tables: list = [Text(title, style="table.title")] if by_point else []
        for label, group in groups.items():
            tables += [Text(), Text(label, style="bold")] if by_point else []  # the point's values
            for number, columns in enumerate(parts):
                cells = [[row[c] for c in columns] for row in group]
                tables.append(table(title if number == 0 and not by_point else None,
                                    [headers[c] for c in columns], cells, keys,
                                    [natural[c] if aligned else None for c in columns]))
        return tables

    out: list = []
    for endpoint in result.survival["endpoint"].unique(maintain_order=True).cast(pl.String):
        headers, rows = endpoint_table(result, endpoint, compact=True)
        title = (f"{ENDPOINT_LABELS[endpoint].capitalize()} against {result.reference} "
                 "(months; [95% CI])")
        sweep = headers.index("schedule") > 0
        options = [(False, False), *([(True, False)] if sweep else []), (sweep, True)]
        for by_point, split in options:
            tables = layout(headers, rows, title, by_point, split, aligned=True)
            if width is None or _fits(tables, width):
                break
        else:  # nothing fits: the last layout, wrapped where rich must
            tables = layout(headers, rows, title, by_point, split, aligned=False)
        out += [Text(), *tables] if out else tables  # a blank line between endpoints
    return out


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="YAML config file.")]) -> None:
    """Check CONFIG (every sweep point too) and print the resolved model with its analytic
    expectations."""
    try:
        loaded = load_config(config)
        model = compile_model(loaded)
        points = expand_sweep(loaded)
    except ClonesimError as error:
        _fail(str(error))
    out = Console()
    out.print(describe_model(model))
    if loaded.sweep is not None:
        out.print(_sweep_table(points, out.width))


#: Sweep points listed by ``validate`` (the rest are counted).
MAX_POINTS_SHOWN = 20


def _sweep_table(points: list[SweepPoint], width: int = 80) -> Group:
    """The sweep's points under short labels of the swept paths (the full paths below,
    where they differ): a table when it fits ``width`` columns, else one line per point
    (``label=value, ...``), so that no value is cut."""
    paths = list(dict.fromkeys(path for p in points for path in p.overrides))
    labels = short_labels(paths)
    shortened = [f"{labels[path]} = {path}" for path in paths if labels[path] != path]
    title = f"Sweep: {len(points)} points, all valid (replicate streams keyed by point)"
    shown = points[:MAX_POINTS_SHOWN]
    cells = {path: [f"{p.value(path)!r}" if not isinstance(p.value(path), float) else f"{p.value(path):.4g}"
                    for p in shown] for path in paths}
    more = len(points) - len(shown)
    footer = [Text("; ".join(shortened), style="dim")] if shortened else []
    table = Table(title=title)
    table.add_column("point", no_wrap=True)
    for path in paths:
        table.add_column(Text(labels[path]), justify="right", no_wrap=True)
    for row, p in enumerate(shown):
        table.add_row(Text(p.id), *[Text(cells[path][row]) for path in paths])
    if not _fits([table], width):
        lines = [Text(title, style="bold")]
        lines += [Text(f"{p.id}  " + ", ".join(f"{labels[path]}={cells[path][row]}" for path in paths))
                  for row, p in enumerate(shown)]
        lines += [Text(f"... {more} more")] if more > 0 else []
        return Group(*lines, *footer)
    if more > 0:
        table.add_row(Text(f"... {more} more"), *[""] * len(paths))
    return Group(table, *footer)


def main() -> None:
    """Entry point of the ``clonesim`` script."""
    try:
        app()
    except ClonesimError as error:  # pragma: no cover - commands catch their own
        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
