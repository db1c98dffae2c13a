"""Curvature at 1e5–1e7 parameters: top-10, λ_min, trace, spectral density and the certificate, overparam against
curvlinops (+ scipy eigsh), PyHessian and hessian-eigenthings, on a Tanh MLP and a small CNN (float32).

Every tool's Hessian-vector products are counted (a scipy operator's columns, PyHessian's hessian_vector_product,
hessian-eigenthings' matvec, overparam's own count), so that the table compares work as well as seconds. Accuracy:
eigenvalues from Krylov methods and power iteration are Rayleigh quotients, so each is ≤ λ_k (top) or ≥ λ_min (bottom);
the reference is the best value any tool reached (the largest top-k, the smallest λ_min) and each row reports its
relative distance to it. Settings, chosen to ask every tool for the same accuracy:

- top-10 and λ_min: relative residual 1e-6 (overparam and eigsh use the same test ‖H y − θ y‖ ≤ tol·|θ|); for λ_min
  also overparam's value test (min(r, r²/gap) ≤ 1e-6·|θ|: stops when the eigenvalue is accurate to about 1e-6), for
  the top-10 with ``--top10-tests value residual``;
  hessian-eigenthings' Lanczos (no restart, no stopping rule) is given as many steps as overparam used; PyHessian's
  power iteration (no λ_min) its relative-change tolerance 1e-4 and ``--pyhessian-iters`` iterations per eigenvalue.
  overparam's λ_min row also reports the product at which its λ_min first came within 1e-6 of the reference (from the
  run's own convergence history). ``--floor N`` adds the Krylov floor: Lanczos with no restart for N products, whose
  products_to_1e-6 is the fewest products with which any method multiplying by H from the same start vector can
  reach 1e-6 (its Ritz value is the smallest Rayleigh quotient over the Krylov space). The reference for top-10 is the largest value per rank among the Ritz values
  of a float64 basis (overparam, curvlinops + eigsh: lower bounds of λ_k); hessian-eigenthings' Lanczos (values 6e-6
  to 3e-5 above those, which agree to 2e-8) and PyHessian's deflated power iteration are no bounds and are only
  compared (the tables measured before this rule took eigenthings' values as the reference).
- trace: ``--trace-products`` products each (Hutch++ for overparam, curvlinops, hessian-eigenthings; PyHessian's
  Hutchinson stops at its own tolerance 1e-3), with the standard error across probes as the stated accuracy.
- density: the same SLQ settings (``--slq-probes`` probes × ``--slq-steps`` steps) for overparam, PyHessian and
  hessian-eigenthings.
- every tool in IEEE float32 (TF32 off: torch's default runs cuDNN convolutions in TF32; ``benchmarks/hessian_tf32.py``
  measures what that changes on the CNN at 10⁷ parameters on a GPU).
- certify: overparam only (no baseline has one), at the indefinite point and at a positive definite one (the loss
  plus (ρ/2)‖θ‖² with ρ = 1.5|λ_min|), within ``--certify-products``.

Threads pinned (overparam.backend.pin_threads), best of ``--repeats`` wall times (a first run slower than ``--slow``
seconds runs once: the ``runs`` column), the process's CPU seconds of that run (``cpu_seconds``: on a shared machine
the wall time grows with the load, the CPU time of a one-thread run much less), machine load from /proc/loadavg.

    python benchmarks/hessian_eigenvalues.py                       # 1e5 and 1e6, MLP and CNN, CPU
    python benchmarks/hessian_eigenvalues.py --params 1e5 --models mlp --tasks top10 lambda_min
    python benchmarks/hessian_eigenvalues.py --device cuda --params 1e7 --repeats 3   # on a GPU
    python benchmarks/hessian_eigenvalues.py --combine NAME1 NAME2 --name NAME     # one table of runs made side by side
    OUT=/tmp/out bash benchmarks/hessian_eigenvalues_gpu.sh                        # 1e7 (and 1e6 trace) on one GPU

Each tool's top-10 and λ_min are printed as soon as measured and the results files are rewritten after every task, so
a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from typing import Any, Callable

import numpy as np
import torch

from _common import RESULTS, write
from overparam.backend import pin_threads
from overparam.diagnostics import HessianOperator, certify, hutchpp, lanczos, spectral_density

TOOLS = ("overparam", "curvlinops", "pyhessian", "eigenthings")
TASKS = ("top10", "lambda_min", "trace", "density", "certify")


# --- models ---------------------------------------------------------------------------------------------------------
def mlp(params: float) -> torch.nn.Module:
    """Tanh MLP 32 → w → w → 10 with about ``params`` parameters (w² + 44w + 10 = params)."""
    w = int(round((-44 + math.sqrt(44 ** 2 + 4 * (params - 10))) / 2))
    return torch.nn.Sequential(torch.nn.Linear(32, w), torch.nn.Tanh(), torch.nn.Linear(w, w), torch.nn.Tanh(),
                               torch.nn.Linear(w, 10))


def cnn(params: float) -> torch.nn.Module:
    """Small CNN on 3×8×8 images: conv 3→c, conv c→c (stride 2), average pool to 2×2, linear 4c → 10; 9c² + 78c + 10
    parameters."""
    c = int(round((-78 + math.sqrt(78 ** 2 + 36 * (params - 10))) / 18))
    return torch.nn.Sequential(torch.nn.Conv2d(3, c, 3, padding=1), torch.nn.Tanh(),
                               torch.nn.Conv2d(c, c, 3, stride=2, padding=1), torch.nn.Tanh(),
                               torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * c, 10))


def problem(kind: str, params: float, n: int, device: str) -> tuple[torch.nn.Module, Callable, torch.Tensor,
                                                                     torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if kind == "mlp":
        X, y, loss = torch.randn(n, 32, generator=g), torch.randn(n, 10, generator=g), torch.nn.MSELoss()
        net = mlp(params)
    else:
        X, y, loss = torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g), \
            torch.nn.CrossEntropyLoss()
        net = cnn(params)
    return net.to(device), loss, X.to(device), y.to(device)


# --- counting products ----------------------------------------------------------------------------------------------
class Counter:
    def __init__(self) -> None:
        self.n = 0


def counted_scipy(op: Any, counter: Counter) -> Any:
    """A scipy LinearOperator that counts columns multiplied."""
    from scipy.sparse.linalg import LinearOperator

    def mv(x):
        counter.n += 1
        return op.matvec(x)

    def mm(X):
        counter.n += X.shape[1]
        return op.matmat(X)
    return LinearOperator(op.shape, dtype=np.float64, matvec=mv, matmat=mm)


def pyhessian_counted(counter: Counter):
    """PyHessian's module with hessian_vector_product wrapped to count calls."""
    import sys
    import pyhessian  # noqa: F401 (the package's name 'hessian' is the class; the module is in sys.modules)
    ph = sys.modules["pyhessian.hessian"]
    if not hasattr(ph, "_orig_hvp"):
        ph._orig_hvp = ph.hessian_vector_product

    def hvp(*a, **k):
        counter.n += 1
        return ph._orig_hvp(*a, **k)
    ph.hessian_vector_product = hvp
    return ph


class _CountedOp:
    """A hessian-eigenthings operator whose matvec is counted."""

    def __init__(self, op: Any, counter: Counter):
        self.op, self.counter = op, counter

    def __getattr__(self, name):
        return getattr(self.op, name)

    def matvec(self, v):
        self.counter.n += 1
        return self.op.matvec(v)

    __call__ = matvec

    def __matmul__(self, v):
        return self.matvec(v)


def eigenthings_op(net, loss, X, y, batch: int, counter: Counter) -> Any:
    import hessian_eigenthings as he
    loader = [(X[i:i + batch], y[i:i + batch]) for i in range(0, len(X), batch)]
    return _CountedOp(he.HessianOperator(net, loader, he.supervised_loss(loss)), counter)


def curvlinops_op(net, loss, X, y, batch: int) -> Any:
    from curvlinops import HessianLinearOperator
    data = [(X[i:i + batch], y[i:i + batch]) for i in range(0, len(X), batch)]
    return HessianLinearOperator(net, loss, [p for p in net.parameters()], data, check_deterministic=False)


# --- one timed run --------------------------------------------------------------------------------------------------
SLOW = 60.0  # seconds: a method whose first run takes longer runs once (--slow; the ``runs`` column says so)
RUNS: dict[float, tuple[int, float]] = {}  # best wall time -> (runs it is the best of, its CPU seconds), for row()


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """(result of the last run, best wall time of ``repeats``; a first run slower than SLOW seconds is not repeated)."""
    best, out, runs, cpu = math.inf, None, 0, math.nan
    for _ in range(repeats):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sync()
        t, runs = time.perf_counter() - t0, runs + 1
        if t < best:
            best, cpu = t, time.process_time() - c0
        if best > SLOW:
            break
    RUNS[best] = (runs, cpu)
    return out, best


def sync() -> None:
    """Wait for the GPU's queued work, so that a wall time covers it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def row(params: int, model: str, task: str, tool: str, seconds: float, products: int | float, value: str,
        accuracy: float | str, **extra: Any) -> dict:
    """One result row, printed (flushed) as soon as it is made so that a run cut short still shows its rows."""
    runs, cpu = RUNS.get(seconds, (1, math.nan))
    r = {"params": params, "model": model, "task": task, "tool": tool, "seconds": seconds, "cpu_seconds": cpu,
         "runs": runs, "products": products, "value": value, "accuracy": accuracy, "load": load(),
         "products_to_1e-6": "", "notes": "", **extra}
    print(r, flush=True)
    return r


# --- tasks ----------------------------------------------------------------------------------------------------------
def measured(store: dict, task: str, tool: str, values: np.ndarray, seconds: float, products: int) -> int:
    """Keep one tool's eigenvalues for the rows (made once every tool has run, against the best of them) and print
    them now, so that a run cut short still shows what it measured. Returns ``products``."""
    store[tool] = (values, seconds, products)
    print(f"# measured {task}, {tool}: {seconds:.4g} s, {products} products, {values[0]:.8g} … {values[-1]:.8g} "
          f"(load {load()})", flush=True)
    return products


def top_reference(tools: list[str]) -> list[str]:
    """The tools whose top-10 values make the reference: those with a float64 basis (ours, eigsh's), whose Ritz
    values bound λ_k from below; without them every tool but PyHessian's deflated power iteration."""
    return [t for t in tools if t.startswith(("overparam", "curvlinops"))] or [t for t in tools if "PyHessian" not in t]


def eig_tasks(args, net, loss, X, y, H, n_params, model, tools) -> list[dict]:
    """top-10 and λ_min for every tool; accuracy against the best value reached."""
    from scipy.sparse.linalg import eigsh
    rows, top, bottom = [], {}, {}
    v0 = np.random.default_rng(0).standard_normal(H.dim)
    ours_top_products = 60
    if "top10" in args.tasks and "overparam" in tools:
        for test in args.top10_tests:  # the residual test's row is "overparam" (eigsh's test), the other one named
            res, t = timed(lambda test=test: lanczos(H, k_top=10, k_bottom=0, tol=1e-6, seed=0, test=test),
                           args.repeats)
            tool = "overparam" if test == "residual" else f"overparam ({test} test)"
            products = measured(top, "top-10", tool, res.largest, t, res.products)
            if test == "residual" or len(args.top10_tests) == 1:  # hessian-eigenthings gets eigsh's test's steps
                ours_top_products = products
    hist: list[tuple[int, float]] = []
    floor_hist: list[tuple[int, float]] = []
    if "lambda_min" in args.tasks and "overparam" in tools:
        for test in args.lanczos_tests:
            def run(test=test):
                hist.clear()
                return lanczos(H, k_top=0, k_bottom=1, tol=1e-6, seed=0, max_products=args.max_lanczos, test=test,
                               callback=lambda p, th, r: hist.append((p, float(th[0]))))
            res, t = timed(run, args.repeats)
            measured(bottom, "lambda_min", f"overparam ({test} test)", res.smallest, t, res.products)
        ours_bottom_products = res.products
    else:
        ours_bottom_products = 200
    if "lambda_min" in args.tasks and "overparam" in tools and args.floor:
        # the Krylov floor: one Lanczos run with no restart and no stopping rule, so that its λ_min after j products
        # is the smallest Rayleigh quotient over the j-dimensional Krylov space of the start vector; no method that
        # multiplies by H from that vector (restarted Lanczos, eigsh, LOBPCG without a preconditioner) is closer
        # after j products. Its products_to_1e-6 is the fewest with which any of them reaches 1e-6.
        res, t = timed(lambda: lanczos(H, k_top=0, k_bottom=1, tol=0.0, seed=0, max_products=args.floor,
                                       max_basis=args.floor, callback=lambda p, th, r: floor_hist.append(
                                           (p, float(th[0])))), 1)
        measured(bottom, "lambda_min", "Krylov floor (Lanczos, no restart)", res.smallest, t, res.products)
    if "curvlinops" in tools:
        c = Counter()
        op = counted_scipy(curvlinops_op(net, loss, X, y, args.batch).to_scipy(), c)
        for task, which, store, k in (("top10", "LA", top, 10), ("lambda_min", "SA", bottom, 1)):
            if task in args.tasks:
                def run(which=which, k=k):
                    c.n = 0
                    return np.sort(eigsh(op, k=k, which=which, tol=1e-6, v0=v0, return_eigenvectors=False))
                vals, t = timed(run, args.repeats)
                measured(store, task.replace("top10", "top-10"), "curvlinops + eigsh", vals, t, c.n)
    if "eigenthings" in tools:
        import hessian_eigenthings as he
        c = Counter()
        op = eigenthings_op(net, loss, X, y, args.batch, c)
        for task, which, store, k, steps in (("top10", "LA", top, 10, ours_top_products),
                                             ("lambda_min", "SA", bottom, 1, ours_bottom_products)):
            if task in args.tasks:
                def run(which=which, k=k, steps=steps):
                    c.n = 0
                    r = he.lanczos(op, k=k, max_iter=max(steps, 2 * k), tol=1e-6, which=which, seed=0,
                                   reorthogonalize=True)
                    return np.sort(r.eigenvalues.double().cpu().numpy())
                vals, t = timed(run, args.repeats)
                measured(store, task.replace("top10", "top-10"), "hessian-eigenthings lanczos", vals, t, c.n)
    if "pyhessian" in tools and "top10" in args.tasks:
        c = Counter()
        ph = pyhessian_counted(c)

        def run():
            c.n = 0
            hc = ph.hessian(net, loss, data=(X, y), cuda=args.device == "cuda")
            return np.sort(np.asarray(hc.eigenvalues(maxIter=args.pyhessian_iters, tol=1e-4, top_n=10)[0], float))
        vals, t = timed(run, args.repeats)
        measured(top, "top-10", "PyHessian power iteration", vals, t, c.n)
    if top:  # Ritz values bound λ_k from below: the reference is the largest from a float64 basis (ours, eigsh's)
        # hessian-eigenthings' Lanczos values came out 6e-6 (10⁶) to 3e-5 (10⁷) above those, which agree to 2e-8:
        # they are no bound (its basis and tridiagonal matrix are float32); nor is PyHessian's deflated power iteration
        best = np.max(np.stack([top[tool][0] for tool in top_reference(list(top))]), 0)
        for tool, (v, t, p) in top.items():
            rows.append(row(n_params, model, "top-10", tool, t, p, f"{v[-1]:.6g} … {v[0]:.6g}",
                            float(np.max(np.abs(v / best - 1)))))
    if bottom:
        best = min(float(v[0]) for v, _, _ in bottom.values())
        for tool, (v, t, p) in bottom.items():
            extra = {}
            if tool == f"overparam ({args.lanczos_tests[-1]} test)" and hist:
                extra["products_to_1e-6"] = _first_within(hist, best)
                HISTORY[f"{n_params} {model} {tool}"] = list(hist)
            if tool.startswith("Krylov floor"):
                extra["products_to_1e-6"] = _first_within(floor_hist, best)
                HISTORY[f"{n_params} {model} Krylov floor"] = list(floor_hist)
            rows.append(row(n_params, model, "lambda_min", tool, t, p, f"{v[0]:.8g}", abs(float(v[0]) / best - 1),
                            **extra))
    return rows


HISTORY: dict[str, list[tuple[int, float]]] = {}  # λ_min's Ritz value after each product, for --combine


def _first_within(hist: list[tuple[int, float]], best: float, rel: float = 1e-6) -> int | float:
    """The product after which the Ritz value first came (and stayed) within ``rel`` of ``best``."""
    far = [p for p, th in hist if abs(th / best - 1) > rel]
    after = [p for p, _ in hist if not far or p > far[-1]]
    return after[0] if after else math.nan


def trace_task(args, net, loss, X, y, H, n_params, model, tools) -> list[dict]:
    rows, m = [], args.trace_products
    if "overparam" in tools:
        r, t = timed(lambda: hutchpp(H, n_products=m, seed=0), args.repeats)
        rows.append(row(n_params, model, "trace", "overparam Hutch++", t, r.products,
                        f"{r.trace:.6g} ± {r.stderr:.2g}", r.stderr / abs(r.trace)))
    if "curvlinops" in tools:
        from curvlinops import hutchpp_trace
        A = curvlinops_op(net, loss, X, y, args.batch)
        c = Counter()

        def run():
            c.n = 0
            return float(hutchpp_trace(_CountingTorchOp(A, c), m))
        tr, t = timed(run, args.repeats)
        rows.append(row(n_params, model, "trace", "curvlinops Hutch++", t, c.n, f"{tr:.6g}", "no error stated"))
    if "eigenthings" in tools:
        import hessian_eigenthings as he
        c = Counter()
        op = eigenthings_op(net, loss, X, y, args.batch, c)

        def run():
            c.n = 0
            return he.trace(op, num_matvecs=m, method="hutch++", seed=0)
        r, t = timed(run, args.repeats)
        rows.append(row(n_params, model, "trace", "hessian-eigenthings Hutch++", t, c.n,
                        f"{r.estimate:.6g} ± {r.stderr:.2g}", r.stderr / abs(r.estimate)))
    if "pyhessian" in tools:
        c = Counter()
        ph = pyhessian_counted(c)

        def run():
            c.n = 0
            return ph.hessian(net, loss, data=(X, y), cuda=args.device == "cuda").trace(maxIter=m, tol=1e-3)
        s, t = timed(run, args.repeats)
        se = float(np.std(s, ddof=1) / math.sqrt(len(s))) if len(s) > 1 else math.nan
        rows.append(row(n_params, model, "trace", "PyHessian Hutchinson", t, c.n, f"{np.mean(s):.6g} ± {se:.2g}",
                        se / abs(float(np.mean(s)))))
    return rows


class _CountingTorchOp:
    """curvlinops' torch operator with its matmat columns counted (hutchpp_trace calls A @ X)."""

    def __init__(self, A: Any, counter: Counter):
        self.A, self.counter = A, counter
        self.shape, self.dtype, self.device = A.shape, A.dtype, A.device

    def __matmul__(self, X):
        self.counter.n += 1 if X.ndim == 1 else X.shape[1]
        return self.A @ X

    def __getattr__(self, name):
        return getattr(self.A, name)


@contextlib.contextmanager
def _torch_eig_shim():
    """PyHessian 0.1's density calls ``torch.eig(T, eigenvectors=True)`` (removed in torch 1.9) on its symmetric
    tridiagonal T: for the duration, the same values from ``torch.linalg.eigh`` in the old layout ((k, 2) real and
    imaginary parts, eigenvectors as columns)."""
    had = hasattr(torch, "eig")
    old = getattr(torch, "eig", None)

    def eig(T, eigenvectors=False):
        w, V = torch.linalg.eigh(T)
        return torch.stack([w, torch.zeros_like(w)], 1), V

    torch.eig = eig
    try:
        yield
    finally:
        if had:
            torch.eig = old
        else:
            del torch.eig


def density_task(args, net, loss, X, y, H, n_params, model, tools) -> list[dict]:
    rows, k, s = [], args.slq_probes, args.slq_steps
    note = f"SLQ {k} probes × {s} steps"
    if "overparam" in tools:
        _, t = timed(lambda: spectral_density(H, n_probe=k, n_steps=s, seed=0), args.repeats)
        rows.append(row(n_params, model, "density", "overparam SLQ", t, k * s, note, "same settings"))
    if "pyhessian" in tools:
        c = Counter()
        ph = pyhessian_counted(c)

        def run():
            c.n = 0
            return ph.hessian(net, loss, data=(X, y), cuda=args.device == "cuda").density(iter=s, n_v=k)
        try:
            with _torch_eig_shim():
                _, t = timed(run, args.repeats)
            rows.append(row(n_params, model, "density", "PyHessian SLQ", t, c.n, note,
                            "same settings; torch.eig (removed in torch 1.9) given back as torch.linalg.eigh"))
        except RuntimeError as exc:  # a failure the shim does not cover
            rows.append(row(n_params, model, "density", "PyHessian SLQ", math.nan, c.n,
                            f"failed after {c.n} products: {str(exc).splitlines()[0][:70]}", "n/a"))
    if "eigenthings" in tools:
        import hessian_eigenthings as he
        c = Counter()
        op = eigenthings_op(net, loss, X, y, args.batch, c)

        def run():
            c.n = 0
            return he.spectral_density(op, num_runs=k, lanczos_steps=s, seed=0)
        _, t = timed(run, args.repeats)
        rows.append(row(n_params, model, "density", "hessian-eigenthings SLQ", t, c.n, note, "same settings"))
    return rows


class _WithRidge(torch.nn.Module):
    """The model with ‖θ‖² as a second output, so that a loss can add (ρ/2)‖θ‖² (a positive definite point)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x), sum((p ** 2).sum() for p in self.inner.parameters())


def certify_task(args, net, loss, X, y, H, n_params, model, lam_min: float | None) -> list[dict]:
    rows = []
    cases = [("indefinite", net, loss)]
    if lam_min is not None and lam_min < 0:
        rho = 1.5 * abs(lam_min)
        cases.append((f"ridge ρ={rho:.3g}", _WithRidge(net), lambda o, t: loss(o[0], t) + rho / 2 * o[1]))
    for name, m, lf in cases:
        c, t = timed(lambda: certify(m, lf, X, y, batch_size=args.batch, dense_limit=0, seed=0,
                                     max_products=args.certify_products, progress=args.progress or None), 1)
        rows.append(row(n_params, model, f"certify ({name})", "overparam", t, c.products,
                        f"μ={c.mu:.4g} L={c.L:.4g} M={c.hessian_lipschitz:.3g} r={c.radius:.3g} "
                        f"ball={'pass' if c.ball_check_passed else 'fail'}", "n/a (no baseline)",
                        notes="; ".join(c.notes)[:300]))
    return rows


def combine(names: list[str], out: str, folder: str | os.PathLike) -> None:
    """One table from the results of several runs (``--combine``; e.g. the baselines and overparam measured as two
    processes side by side on a shared machine): λ_min's accuracy recomputed against the smallest value in all of them,
    top-10's from its first and tenth values against the largest of the Lanczos tools (the PyHessian rule above)."""
    import json
    from pathlib import Path
    names = [n for n in names if (Path(folder) / f"{n}.json").exists()]  # a part cut short may have written none
    runs = [json.loads((Path(folder) / f"{n}.json").read_text()) for n in names]
    history = {k: v for run in runs for k, v in run.get("history", {}).items()}
    keys = list(dict.fromkeys(k for run in runs for r in run["rows"] for k in r))
    rows = [{k: r.get(k, "") for k in keys} for run in runs for r in run["rows"]]
    for (params, model), group in _groups(rows).items():
        low = [r for r in group if r["task"] == "lambda_min"]
        if low:
            best = min(float(r["value"]) for r in low)
            for r in low:
                r["accuracy"] = abs(float(r["value"]) / best - 1)
                hist = history.get(f"{params} {model} {r['tool']}")
                if hist:
                    r["products_to_1e-6"] = _first_within(hist, best)
        top = [r for r in group if r["task"] == "top-10"]
        names = top_reference([r["tool"] for r in top])
        ref = [r for r in top if r["tool"] in names]
        if ref:
            ends = np.array([[float(x) for x in r["value"].split(" … ")] for r in ref]).max(0)
            for r in top:
                r["accuracy"] = float(np.max(np.abs(np.array([float(x) for x in r["value"].split(" … ")]) / ends - 1)))
    note = " ".join(f"[{n}] {run['notes']}" for n, run in zip(names, runs))
    machines = [run["machine"] for run in runs]  # the header names where the rows were measured, not this process
    write(out, rows, "combined runs (accuracy against the best of all of them): " + note, folder,
          measured_on=machines[0] if all(m == machines[0] for m in machines) else {"runs": machines},
          date=" to ".join(dict.fromkeys([min(r["date"] for r in runs), max(r["date"] for r in runs)])))
    _add_history(Path(folder) / f"{out}.json", history)


def _add_history(path, history: dict) -> None:
    """λ_min's convergence history into the results JSON (not the table)."""
    import json
    payload = json.loads(path.read_text())
    payload["history"] = history
    path.write_text(json.dumps(payload, indent=2))


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["params"], r["model"]), []).append(r)
    return out


def main() -> None:
    global SLOW
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--params", type=float, nargs="+", default=[1e5, 1e6])
    ap.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--tools-large", nargs="+", default=["overparam", "curvlinops"], choices=TOOLS,
                    help="tools run above --large parameters (the slow baselines cost minutes per task there)")
    ap.add_argument("--large", type=float, default=5e5)
    ap.add_argument("--n", type=int, default=2048, help="data points (MLP)")
    ap.add_argument("--n-cnn", type=int, default=512, help="data points (CNN)")
    ap.add_argument("--batch", type=int, default=1024, help="mini-batch of a product (all tools)")
    ap.add_argument("--repeats", type=int, default=1, help="best of this many wall times (1 at 1e6 on 2 cores)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--pyhessian-iters", type=int, default=50)
    ap.add_argument("--trace-products", type=int, default=99)
    ap.add_argument("--slq-probes", type=int, default=4)
    ap.add_argument("--slq-steps", type=int, default=40)
    ap.add_argument("--certify-products", type=int, default=300, help="certify's budget (its default)")
    ap.add_argument("--max-lanczos", type=int, default=600)
    ap.add_argument("--floor", type=int, default=0, metavar="PRODUCTS",
                    help="also run λ_min's Krylov floor: Lanczos without restart for this many products (a basis of "
                         "as many vectors, float64)")
    ap.add_argument("--lanczos-tests", nargs="+", default=["value", "residual"], choices=["value", "residual"],
                    help="overparam's stopping tests run for λ_min")
    ap.add_argument("--top10-tests", nargs="+", default=["residual"], choices=["value", "residual"],
                    help="overparam's stopping tests run for the top-10 (residual: eigsh's test)")
    ap.add_argument("--slow", type=float, default=60.0, help="seconds above which a first run is not repeated")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--name", default=None, help="results file name (default hessian_eigenvalues_DEVICE)")
    ap.add_argument("--out", default=None, help="folder for the results (default benchmarks/results)")
    ap.add_argument("--combine", nargs="+", default=None, metavar="NAME",
                    help="write one table (--name) from these results files and exit")
    args = ap.parse_args()
    if args.combine:
        return combine(args.combine, args.name or "hessian_eigenvalues_combined", args.out or RESULTS)
    pin_threads(args.threads)
    # every tool in IEEE float32: torch runs cuDNN convolutions in TF32 by default, which moved the CNN's λ_min at
    # 10⁷ parameters by 3.8e-4 and two tools' products apart by 4.8e-5 (overparam's operators turn it off themselves)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    SLOW = args.slow
    rows: list[dict] = []
    for params in args.params:
        for model in args.models:
            run_model(args, params, model, rows)


def run_model(args, params: float, model: str, rows: list[dict]) -> None:
    """Every task of one model at one size; ``rows`` grows and is written after each task (a run cut short keeps
    what it measured)."""
    net, loss, X, y = problem(model, params, args.n if model == "mlp" else args.n_cnn, args.device)
    n_params = sum(p.numel() for p in net.parameters())
    tools = args.tools if params <= args.large else [t for t in args.tools if t in args.tools_large]
    H = HessianOperator(net, loss, X, y, batch_size=args.batch)

    def keep(new: list[dict]) -> list[dict]:
        rows.extend(new)
        path = write(args.name or f"hessian_eigenvalues_{args.device}", rows, notes(args), args.out or RESULTS)
        _add_history(path, HISTORY)
        return new
    lam = keep(eig_tasks(args, net, loss, X, y, H, n_params, model, tools))
    if "trace" in args.tasks:
        keep(trace_task(args, net, loss, X, y, H, n_params, model, tools))
    if "density" in args.tasks:
        keep(density_task(args, net, loss, X, y, H, n_params, model, tools))
    if "certify" in args.tasks and "overparam" in tools:
        lam = [r for r in lam if r["task"] == "lambda_min" and r["tool"].startswith("overparam")]
        keep(certify_task(args, net, loss, X, y, H, n_params, model, float(lam[0]["value"]) if lam else None))


def notes(args) -> str:
    return (f"float32 (IEEE: TF32 off for every tool); MLP 32→w→w→10 Tanh, MSE, n = {args.n}; CNN 3×8×8 "
            f"conv-conv(stride 2)-pool-linear, cross-entropy, n = {args.n_cnn}; products over batches of {args.batch}; "
            f"threads {args.threads}; best of {args.repeats}; load = 1-min load average at the row. accuracy: top-10 and λ_min, the largest "
            f"relative distance to the reference (module docstring); trace, the stated standard error over |trace|. "
            f"Top-10/λ_min: relative residual 1e-6 (eigsh and overparam), hessian-eigenthings Lanczos with "
            f"overparam's number of steps, PyHessian maxIter {args.pyhessian_iters} tol 1e-4. Trace: "
            f"{args.trace_products} products. SLQ: {args.slq_probes}×{args.slq_steps}. certify: budget "
            f"{args.certify_products} products. Tools above {args.large:.0e} parameters: {', '.join(args.tools_large)}.")

if __name__ == "__main__":
    main()
