"""The report renders in a real browser (headless Chromium) with its figures loaded."""

import re
import shutil
import subprocess

import pytest

from overparam.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const d = document.createElement('div'); d.id = 'imgcheck';
  d.textContent = `loaded=${ok} total=${imgs.length} width=${imgs.length ? imgs[0].naturalWidth : 0}`;
  document.body.appendChild(d);
});
</script>"""


def images_loaded(page, tmp_path) -> tuple[int, int, int]:
    """(images loaded, images in all, width of the first) of an HTML file opened in headless Chromium."""
    page.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                        page.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r"loaded=(\d+) total=(\d+) width=(\d+)", r.stdout)
    assert m, r.stderr[-2000:]
    return tuple(map(int, m.groups()))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_opens_in_headless_chromium(tmp_path):
    out = tmp_path / "res"
    assert main(["reproduce", "toy", "--scale", "test", "--workers", "1", "--quiet", "--out", str(out)]) == 0
    page = tmp_path / "check.html"
    page.write_text((out / "index.html").read_text())
    loaded, total, width = images_loaded(page, tmp_path)
    assert total >= 1 and loaded == total and width > 100
