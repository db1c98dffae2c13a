"""checkup.html renders in headless Chromium with every figure loaded."""

import numpy as np
import pytest

from overparam.cli import main
from test_report_browser import CHROMIUM, images_loaded


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_checkup_page_opens_in_headless_chromium(tmp_path, monkeypatch):
    (tmp_path / "mlp.py").write_text("import torch\n\ndef build():\n    torch.manual_seed(0)\n    return torch.nn.Sequential("
                                     "torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    g = np.random.default_rng(0)
    X = g.standard_normal((200, 12)) * np.arange(1, 13.0) ** -0.5
    np.savez(tmp_path / "d.npz", inputs=X, targets=g.standard_normal((200, 1)))
    out = tmp_path / "out"
    assert main(["diagnose", "mlp:build", str(tmp_path / "d.npz"), "--out", str(out), "--quiet"]) == 0
    page = tmp_path / "check.html"
    html = (out / "checkup.html").read_text()
    page.write_text(html)
    loaded, total, width = images_loaded(page, tmp_path)
    # data spectrum, per-layer ESD, Hessian density
    assert total == html.count("<img") == 3 and loaded == total and width > 100
