"""The command line: ``overparam list | theory | plan | sweep | reproduce | report | export``.

Exit codes: 0 when no verdict fails ("not judged" does not fail), 1 when a verdict fails, 2 for bad usage (one line on stderr naming the
option, never a traceback).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

try:  # typer ≥ 0.23 ships its own copy of click
    from typer._click.exceptions import UsageError
    from typer.exceptions import Abort, Exit
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import Abort, Exit, UsageError

from .config import ConfigError, ReproduceConfig, check_option, validate

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="overparam: five results of overparameterized-learning theory, reproduced and measured.")


@app.command("list")
def list_studies(study: Optional[str] = typer.Argument(None, help="A study: show its declared parameters.")) -> int:
    """List the studies, each with the claim it checks; with STUDY, its parameters (name, type, allowed values,
    default per scale, meaning)."""
    from .studies import all_studies

    if study is None:
        for name, st in all_studies().items():
            typer.echo(f"{name}\n    {st.claim}")
        return 0
    st = _study(study)
    typer.echo(f"{st.name}: {st.claim}\n")
    if not st.params:
        typer.echo("declares no parameters to set")
        return 0
    typer.echo(f"parameters of its '{st.sweep_part}' part (overparam theory/sweep/plan {st.name} --set NAME=VALUES):")
    for p in st.params:
        typer.echo(f"  {p.describe()}")
    return 0


def _study(name: str):
    from .studies import get
    try:
        return get(name)
    except ValueError as exc:
        raise ConfigError("study", str(exc).removeprefix("study: ")) from None


def _grid(study, settings: list[str] | None, scale: str, only_theory: bool = False):
    """The study's grid from ``--set`` items; a bad item or value is a one-line ``--set NAME: …`` error."""
    from .studies.params import settings_from_cli

    _scale(scale)
    try:
        return study.grid(settings_from_cli(settings or [], study.params), scale, only_theory)
    except ValueError as exc:
        raise _set_error(exc) from None


def _set_error(exc: Exception) -> ConfigError:
    """'--set alpha: must be …' from a ValueError 'alpha: must be …' raised at the door."""
    name, sep, rest = str(exc).partition(": ")
    return ConfigError(f"set {name}", rest) if sep and " " not in name else ConfigError("set", str(exc))


SET_HELP = ("NAME=VALUES, repeatable: a,b,c or start:stop:num or start:stop:num:log. Unset parameters take their "
            "defaults at --scale. See 'overparam list STUDY'.")


@app.command()
def theory(
    study: str = typer.Argument(..., help="The study whose theory to evaluate."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
    scale: str = typer.Option("quick", help="Scale whose defaults fill the parameters not set."),
    csv: Optional[Path] = typer.Option(None, help="Also write the table to this CSV file."),
    plot: Optional[Path] = typer.Option(None, help="Also draw it into this PNG file."),
) -> int:
    """The theory's prediction on a grid, no simulation: a column per parameter and per predicted quantity."""
    st = _study(study)
    grid = _grid(st, set_, scale, only_theory=True)
    try:
        table = st.theory_table(grid)
    except ValueError as exc:
        raise _set_error(exc) from None
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if csv is not None:
        table.to_csv(csv, index=False)
        typer.echo(f"wrote {csv}")
    if plot is not None:
        from .report.figures import png_bytes, theory_grid_figure
        plot.write_bytes(png_bytes(theory_grid_figure(table, list(grid.values), st.name)))
        typer.echo(f"wrote {plot}")
    return 0


@app.command()
def plan(
    study: str = typer.Argument(..., help="A study, or 'all'."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP + " Plans a sweep instead of --scale."),
    scale: str = typer.Option("quick", help="The scale to plan (or whose defaults fill a sweep's grid)."),
    seeds: int = typer.Option(3, help="Seeds per grid point of a sweep (with --set)."),
    workers: int = typer.Option(os.cpu_count() or 1, help="Worker processes the wall time is estimated for."),
    calibrate_from: Optional[Path] = typer.Option(None, help="Fit the cost model on the store in this folder (a run "
                                                  "on your machine) instead of the one shipped."),
) -> int:
    """Points, estimated CPU time and peak memory per point and in all, before anything runs."""
    from .studies import all_studies

    names = list(all_studies()) if study == "all" else [_study(study).name]
    if set_ and study == "all":
        raise ConfigError("set", "a sweep plans one study; name it instead of 'all'")
    specs = {name: _spec(_study(name), set_, scale, seeds, sweep=bool(set_)) for name in names}
    typer.echo(_plan_text(specs, workers, calibrate_from))
    return 0


def _spec(st, settings: list[str] | None, scale: str, seeds: int, sweep: bool) -> str:
    """The points to run: ``scale`` (the study's own grid), or with ``sweep`` the grid of ``settings``."""
    from .pipeline import sweep_spec
    from .validation import POSITIVE_INT

    if not sweep:
        return _scale(scale)
    return sweep_spec(_grid(st, settings, scale), _option("seeds", seeds, POSITIVE_INT), scale)


def _option(name: str, value, spec):
    """``value`` checked by the library's one mechanism; a refusal is the one-line ``--name: …`` error."""
    try:
        return check_option(name, value, spec)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _scale(scale: str) -> str:
    from .studies import SCALES
    from .validation import Options
    return _option("scale", scale, Options(SCALES))


def _plan_text(specs: dict[str, str], workers: int, calibrate_from: Path | None = None) -> str:
    import pandas as pd

    from .pipeline import STORE_NAME, resolve
    from .studies import all_studies, get
    from .sweep.cost import CostModel, format_plan

    if calibrate_from is not None:
        from .sweep.store import Store, StoreError, check_store_file
        if not (calibrate_from / STORE_NAME).is_file():
            raise ConfigError("calibrate-from", f"no {STORE_NAME} in {str(calibrate_from)!r}; give the folder of "
                                                "an earlier run")
        try:
            check_store_file(calibrate_from / STORE_NAME)
            with Store(calibrate_from / STORE_NAME) as store:
                model = CostModel.calibrate(store.records(), all_studies(), f"fitted on {calibrate_from}")
        except (StoreError, ValueError) as exc:
            raise ConfigError("calibrate-from", str(exc)) from None
    else:
        model = CostModel.shipped()
    try:
        table = pd.concat([model.plan(get(n), resolve(get(n), spec)[1]) for n, spec in specs.items()])
    except ValueError as exc:
        raise _set_error(exc) from None
    return format_plan(table, workers, model.source)


# options shared by the commands that run points
OUT = typer.Option(Path("overparam-results"), help="Output folder: store, report, verdicts, figures.")
DEVICE = typer.Option("cpu", help="cpu or cuda.")
WORKERS = typer.Option(None, help="Local worker processes (default: number of cores).")
SCHEDULER = typer.Option(None, help="Dask scheduler address; runs the sweep on that cluster.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _config(studies: list[str], scale: str, out: Path, device: str, workers: Optional[str], scheduler: Optional[str],
            quiet: bool) -> ReproduceConfig:
    values = dict(studies=studies, scale=scale, out=out, device=device, scheduler=scheduler, quiet=quiet)
    if workers is not None:
        values["workers"] = workers
    return validate(ReproduceConfig, **values)


@app.command()
def reproduce(
    studies: Optional[list[str]] = typer.Argument(None, help="Studies to run (default: all). See 'overparam list'."),
    scale: str = typer.Option("quick", help="test (seconds), quick (minutes on 2 cores) or paper."),
    out: Path = OUT, device: str = DEVICE, workers: Optional[str] = WORKERS, scheduler: Optional[str] = SCHEDULER,
    quiet: bool = QUIET,
) -> int:
    """Run the studies' sweeps (skipping finished points), store every point, write the report and verdicts."""
    from .pipeline import reproduce as run

    cfg = _config(studies or [], scale, out, device, workers, scheduler, quiet)
    if cfg.scale == "paper":  # its size and cost, before it starts
        typer.echo(_plan_text({n: "paper" for n in cfg.studies}, cfg.workers), err=True)
    return _run(cfg, lambda executor: run(cfg.studies, cfg.scale, cfg.out, executor, device=cfg.device,
                                          quiet=True if cfg.quiet else None))


@app.command()
def sweep(
    study: str = typer.Argument(..., help="The study to sweep. See 'overparam list STUDY' for its parameters."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
    seeds: int = typer.Option(3, help="Seeds per grid point."),
    scale: str = typer.Option("quick", help="Scale whose defaults fill the parameters not set."),
    out: Path = OUT, device: str = DEVICE, workers: Optional[str] = WORKERS, scheduler: Optional[str] = SCHEDULER,
    quiet: bool = QUIET,
) -> int:
    """Simulations on your grid, held against the theory with the study's claims (those that need a grid you did
    not give are "not judged"); same store and report as reproduce, resumable."""
    from .pipeline import run_specs

    st = _study(study)
    cfg = _config([st.name], scale, out, device, workers, scheduler, quiet)
    spec = _spec(st, set_, cfg.scale, seeds, sweep=True)
    return _run(cfg, lambda executor: run_specs({st.name: spec}, cfg.out, executor, device=cfg.device,
                                                quiet=True if cfg.quiet else None))


def _run(cfg, job) -> int:
    """Make the executor, run ``job(executor)``, map a busy or damaged folder to a one-line error, summarise."""
    from .sweep.executors import make_executor
    from .sweep.lock import FolderBusy
    from .sweep.store import StoreError

    try:
        executor = make_executor(cfg.workers, cfg.scheduler)
    except ValueError as exc:
        raise ConfigError("scheduler", str(exc).removeprefix("scheduler: ")) from None
    try:
        outcome = job(executor)
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


@app.command()
def diagnose(
    model: Optional[str] = typer.Argument(None, help="The model: a torch.export file (.pt2), a TorchScript file, a "
                                          "safetensors state dict (with --module), or pkg.mod:function returning it."),
    data: Optional[str] = typer.Argument(None, help="The data: .npz, .pt (a dict) or .safetensors holding arrays "
                                         "named 'inputs' (n, ...) and 'targets' (n, ...)."),
    out: Path = typer.Option(Path("overparam-checkup"), help="Output folder: checkup.html and checkup.json."),
    module: Optional[str] = typer.Option(None, help="pkg.mod:factory building the empty model a .safetensors "
                                         "state dict is loaded into."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    param_filter: Optional[str] = typer.Option(None, help="Comma-separated glob patterns on parameter names (e.g. "
                                               "'fc2.*'): the parameters the curvature is computed for."),
    loss: str = typer.Option("mse", help="mse or cross_entropy (integer class labels as targets)."),
    noise_level: Optional[float] = typer.Option(None, help="Noise variance the training loss is compared with."),
    history: Optional[Path] = typer.Option(None, help="A CSV written by TrainingMonitor.save: plotted in the page "
                                           "(alone, without MODEL and DATA, into history.html)."),
    quiet: bool = QUIET,
) -> int:
    """The checkup of your own model and data: sample ratios and data spectrum, per-layer weight statistics, the
    curvature certificate, redundant units, near-interpolation; findings in plain words, checkup.html and
    checkup.json in --out."""
    from .report.checkup import DiagnoseError, diagnose as run
    from .validation import Options

    _option("device", device, Options(("cpu", "cuda")))
    _option("loss", loss, Options(("mse", "cross_entropy")))
    try:
        rep, folder = run(model, data, out, module=module, device=device, param_filter=param_filter, loss=loss,
                          noise_level=noise_level, history=None if history is None else str(history),
                          progress=not quiet)
    except DiagnoseError as exc:
        if exc.param in ("model", "data"):
            raise UsageError(str(exc)) from None
        raise ConfigError(exc.param, exc.message) from None
    if rep is not None:
        typer.echo(rep.summary())
    typer.echo(f"wrote {folder / ('checkup.html' if rep is not None else 'history.html')}")
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
