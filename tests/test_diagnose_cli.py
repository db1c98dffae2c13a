"""``overparam diagnose`` end to end: a tiny model in each MODEL format, each DATA format, the history page, and bad
inputs (one ``error:`` line, exit code 2, nothing written in --out)."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from overparam.cli import main

FACTORY = textwrap.dedent('''
    import torch

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    ''')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tiny model (4 → 6 → 1, tanh) in every format, its data in every format, on an importable module (built
    once for the module: torch.export takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("diagnose")
    (tmp_path / "tinymodel.py").write_text(FACTORY)
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("tinymodel", None)
    import tinymodel
    net = tinymodel.build()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 4, dtype=torch.float64, generator=g)
    y = torch.randn(64, 1, dtype=torch.float64, generator=g)
    f = {}
    ep = torch.export.export(net, (X,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "m.pt2")
    f["pt2"] = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(net, (X[:5],)), tmp_path / "static.pt2")  # batch fixed at 5
    torch.jit.script(net).save(str(tmp_path / "m.ts"))
    f["script"] = tmp_path / "m.ts"
    from safetensors.torch import save_file
    save_file(net.state_dict(), str(tmp_path / "m.safetensors"))
    f["safetensors"] = tmp_path / "m.safetensors"
    np.savez(tmp_path / "d.npz", inputs=X.numpy(), targets=y.numpy())
    torch.save({"inputs": X, "targets": y.reshape(-1)}, tmp_path / "d.pt")
    save_file({"inputs": X, "targets": y}, str(tmp_path / "d.safetensors"))
    bad = X.clone()
    bad[3, 1] = float("nan")
    np.savez(tmp_path / "nan.npz", inputs=bad.numpy(), targets=y.numpy())
    np.savez(tmp_path / "wide.npz", inputs=np.ones((64, 5)), targets=y.numpy())
    np.savez(tmp_path / "nokeys.npz", x=X.numpy())
    (tmp_path / "notamodel.pt2").write_text("hello")
    (tmp_path / "notamodel.ts").write_text("hello")
    yield tmp_path, f
    sys.path.remove(str(tmp_path))
    sys.modules.pop("tinymodel", None)


@pytest.mark.parametrize("fmt, data", [("pt2", "d.npz"), ("script", "d.pt"), ("safetensors", "d.safetensors"),
                                       ("factory", "d.npz")])
def test_each_model_format_end_to_end(files, fmt, data, capsys):
    tmp, f = files
    args = {"pt2": [str(f["pt2"])], "script": [str(f["script"])], "factory": ["tinymodel:build"],
            "safetensors": [str(f["safetensors"]), "--module", "tinymodel:build"]}[fmt]
    out = tmp / f"out-{fmt}"
    assert main(["diagnose", *args, str(tmp / data), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "data: n = 64, d = 4, P = 37" in printed and "checkup.html" in printed
    rep = json.loads((out / "checkup.json").read_text())
    assert rep["data"]["params"] == 37 and len(rep["layers"]) == 2
    assert [r["shape"] for r in rep["layers"]] == ["6×4", "1×6"]
    if fmt == "script":  # TorchScript cannot substitute parameters: curvature skipped, with the reason
        assert "TorchScript" in rep["curvature"]["skipped"]
    else:
        assert rep["curvature"]["method"] == "dense" and rep["curvature"]["params"] == 37
    # redundancy needs the nn.Sequential structure: kept by a factory and a state dict, gone in a graph
    assert len(rep["redundancy"]) == (1 if fmt in ("factory", "safetensors") else 0)
    page = (out / "checkup.html").read_text()
    assert page.count("<img") >= 2 and "findings" in page
    assert sorted(p.name for p in out.iterdir()) == ["checkup.html", "checkup.json"]


def test_param_filter_and_history(files, capsys):
    tmp, f = files
    import overparam as op
    mon = op.diagnostics.TrainingMonitor(noise_level=0.5)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    for k in range(5):
        mon.step(net, 1.0 / (k + 1), 0.8)
    hist = mon.save(tmp / "h.csv")
    out = tmp / "out-filter"
    assert main(["diagnose", "tinymodel:build", str(tmp / "d.npz"), "--out", str(out), "--param-filter", "2.*",
                 "--history", str(hist), "--quiet"]) == 0
    rep = json.loads((out / "checkup.json").read_text())
    assert rep["curvature"]["params"] == 7  # 2.weight (1 × 6) and 2.bias
    assert "training history" in (out / "checkup.html").read_text()
    alone = tmp / "alone"
    assert main(["diagnose", "--history", str(hist), "--out", str(alone), "--quiet"]) == 0
    assert (alone / "history.html").read_text().count("<img") == 1


@pytest.mark.parametrize("args, starts", [
    (["{tmp}/notamodel.pt2", "{tmp}/d.npz"], "error: model: not a torch.export program"),
    (["{tmp}/notamodel.ts", "{tmp}/d.npz"], "error: model: not a TorchScript"),
    (["no_such_module:build", "{tmp}/d.npz"], "error: model: cannot import"),
    (["{tmp}/m.safetensors", "{tmp}/d.npz"], "error: --module: a safetensors state dict needs --module"),
    (["tinymodel:build", "{tmp}/wide.npz"], "error: data: inputs of shape (64, 5) do not fit the model"),
    (["tinymodel:build", "{tmp}/nan.npz"], "error: data: inputs must be finite (got 1 NaN or inf"),
    (["tinymodel:build", "{tmp}/nokeys.npz"], "error: data: must hold arrays named 'inputs' and 'targets'"),
    (["tinymodel:build", "{tmp}/d.npz", "--param-filter", "nope.*"], "error: --param-filter: 'nope.*' matches no"),
    (["tinymodel:build", "{tmp}/d.npz", "--loss", "hinge"], "error: --loss: must be one of"),
    (["tinymodel:build", "{tmp}/d.npz", "--loss", "cross_entropy"], "error: data: --loss cross_entropy needs integer"),
    (["tinymodel:build"], "error: data: MODEL and DATA go together"),
    (["--history", "{tmp}/d.npz"], "error: --history: not a CSV file"),
    (["tinymodel:build", "{tmp}/d.npz", "--device", "cuda"], "error: --device: 'cuda' was asked for but torch sees"),
    (["{tmp}/static.pt2", "{tmp}/d.npz"], "error: data: inputs of shape (64, 4) do not fit the model (Guard failed"),
])
def test_bad_input_one_line_exit_2_nothing_written(files, args, starts, capsys, tmp_path):
    tmp, f = files
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "out-bad"
    rc = main(["diagnose", *(a.format(tmp=tmp) for a in args), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(starts), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".checkup-")]


def test_loss_that_is_not_a_scalar(files, tmp_path):
    tmp, f = files
    from overparam.report.checkup import DiagnoseError, diagnose
    import overparam.report.checkup as rc
    with pytest.raises(DiagnoseError, match="^loss_fn: must return a scalar"):
        orig = rc._loss_and_targets
        try:
            rc._loss_and_targets = lambda loss, model, x, y: (lambda a, b: (a - b) ** 2, y)
            diagnose("tinymodel:build", str(tmp / "d.npz"), tmp_path / "o", progress=False)
        finally:
            rc._loss_and_targets = orig
    assert not (tmp_path / "o").exists()
