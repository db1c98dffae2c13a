"""The command line: ``overparam list | reproduce | report | export``.

Exit codes: 0 when no verdict fails ("not judged" does not fail), 1 when a verdict fails, 2 for bad usage (one line on stderr naming the
option, never a traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

try:  # typer ≥ 0.23 ships its own copy of click
    from typer._click.exceptions import UsageError
    from typer.exceptions import Abort, Exit
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import Abort, Exit, UsageError

from .config import ConfigError, ReproduceConfig, validate

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="overparam: five results of overparameterized-learning theory, reproduced and measured.")


@app.command("list")
def list_studies() -> int:
    """List the studies, each with the claim it checks."""
    from .studies import all_studies

    for name, study in all_studies().items():
        typer.echo(f"{name}\n    {study.claim}")
    return 0


@app.command()
def reproduce(
    studies: Optional[list[str]] = typer.Argument(None, help="Studies to run (default: all). See 'overparam list'."),
    scale: str = typer.Option("quick", help="test (seconds), quick (minutes on 2 cores) or paper."),
    out: Path = typer.Option(Path("overparam-results"), help="Output folder: store, report, verdicts, figures."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    workers: Optional[str] = typer.Option(None, help="Local worker processes (default: number of cores)."),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address; runs the sweep on that cluster."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> int:
    """Run the studies' sweeps (skipping finished points), store every point, write the report and verdicts."""
    from .pipeline import reproduce as run
    from .sweep.executors import make_executor
    from .sweep.lock import FolderBusy
    from .sweep.store import StoreError

    values = dict(studies=studies or [], scale=scale, out=out, device=device, scheduler=scheduler, quiet=quiet)
    if workers is not None:
        values["workers"] = workers
    cfg = validate(ReproduceConfig, **values)
    try:
        executor = make_executor(cfg.workers, cfg.scheduler)
    except ValueError as exc:
        raise ConfigError("scheduler", str(exc).removeprefix("scheduler: ")) from None
    try:
        outcome = run(cfg.studies, cfg.scale, cfg.out, executor, device=cfg.device,
                      quiet=True if cfg.quiet else None)
    except (StoreError, FolderBusy) as exc:
        executor.close()
        raise ConfigError("out", str(exc).removeprefix("out: ")) from None
    return _summarise(outcome)


@app.command()
def report(out: Path = typer.Argument(..., help="Output folder of an earlier 'reproduce'.")) -> int:
    """Rebuild the report, figures and verdicts from a store, recomputing nothing."""
    from .pipeline import build_report

    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{str(out)!r} is a file; give the folder that holds results.sqlite")
    try:
        outcome = build_report(out)
    except ValueError as exc:  # StoreError included
        raise ConfigError("out", str(exc).removeprefix("out: ")) from None
    return _summarise(outcome)


@app.command()
def export(
    out: Path = typer.Argument(..., help="Output folder of an earlier 'reproduce'."),
    to: Path = typer.Option(..., help="File to write: .csv or .parquet."),
    study: Optional[str] = typer.Option(None, help="Only this study."),
) -> int:
    """Export the store's points (parameters and metrics) to CSV or Parquet."""
    from .pipeline import STORE_NAME
    from .sweep.store import Store, StoreError

    if not (out / STORE_NAME).is_file():
        raise ConfigError("out", f"no {STORE_NAME} in {str(out)!r}")
    if to.suffix not in (".csv", ".parquet"):
        raise ConfigError("to", f"must end in .csv or .parquet (got {to.name!r})")
    try:
        with Store(out / STORE_NAME) as store:
            (store.to_csv if to.suffix == ".csv" else store.to_parquet)(to, study)
    except StoreError as exc:
        raise ConfigError("out", str(exc).removeprefix("out: ")) from None
    except ValueError as exc:
        raise ConfigError("study", str(exc).removeprefix("study: ")) from None
    typer.echo(f"wrote {to}")
    return 0


def _summarise(outcome) -> int:
    for v in outcome.verdicts:
        if v.status == "fail":
            typer.echo(f"FAIL [{v.study}] {v.claim}: measured {v.measured:.4g}, predicted {v.predicted:.4g}, "
                       f"tolerance {v.tolerance:.3g} (margin {v.margin:.3g}) {v.detail}", err=True)
    c = outcome.counts()
    typer.echo(f"{c['pass']} pass, {c['fail']} fail, {c['not judged']} not judged of {len(outcome.verdicts)} "
               f"verdicts; report: {outcome.out / 'index.html'}")
    return 0 if outcome.passed else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps every failure to its exit code."""
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=argv, prog_name="overparam", standalone_mode=False)
    except Exit as exc:
        rv = int(exc.exit_code or 0)
    except UsageError as exc:
        msg = exc.format_message().strip()
        if msg:  # no command at all: the usage was printed, an empty "error:" line would say nothing
            typer.echo(f"error: {msg}", err=True)
        return 2
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except (Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    rv = rv if isinstance(rv, int) else 0
    if rv == 130:  # Ctrl-C: click catches the KeyboardInterrupt and hands back 130 without a word
        typer.echo("aborted", err=True)
    return rv


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
