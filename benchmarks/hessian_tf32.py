"""What TF32 does to curvature: on the small CNN of benchmarks/hessian_eigenvalues.py, with TF32 on (torch's default
for cuDNN convolutions) and off, the relative difference between overparam's and curvlinops' products of one vector
(and between two of ours), and overparam's λ_min by the value test, the residual test and the Krylov floor (Lanczos
without restart, 300 products). Results: benchmarks/results/hessian_eigenvalues_cuda_1e7_cnn_tf32.md.

    python benchmarks/hessian_tf32.py cuda 1e7        # about 1 minute on one H200
    python benchmarks/hessian_tf32.py cpu 3e3         # a smoke test (no TF32 on a CPU: both halves agree)
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import hessian_eigenvalues as hb  # noqa: E402
from overparam.diagnostics import HessianOperator, lanczos  # noqa: E402

dev, params = sys.argv[1], float(sys.argv[2])
net, loss, X, y = hb.problem("cnn", params, 512, dev)
for tf32 in (True, False):
    torch.backends.cudnn.allow_tf32 = tf32  # curvlinops' products run under the process's flags
    H = HessianOperator(net, loss, X, y, batch_size=2048, tf32=tf32)
    A = hb.curvlinops_op(net, loss, X, y, 2048)
    v = torch.randn(H.dim, generator=torch.Generator().manual_seed(0)).to(dev)
    a, b = H.matvec(v), A @ v
    c = HessianOperator(net, loss, X, y, batch_size=2048, tf32=tf32).matvec(v)
    rel = lambda p, q: float((p - q).norm() / p.norm())  # noqa: E731
    print(f"tf32={tf32}: |ours-curvlinops|/|ours| {rel(a, b):.3g}, ours twice {rel(a, c):.3g}", flush=True)
    for test in ("value", "residual"):
        t0 = time.perf_counter()
        r = lanczos(H, k_top=0, k_bottom=1, tol=1e-6, seed=0, max_products=800, test=test)
        print(f"tf32={tf32} {test}: {r.smallest[0]:.8f} residual {r.smallest_residuals[0]:.2e} "
              f"products {r.products} {time.perf_counter() - t0:.1f} s", flush=True)
    r = lanczos(H, k_top=0, k_bottom=1, tol=0.0, seed=0, max_products=300, max_basis=300)
    print(f"tf32={tf32} floor 300: {r.smallest[0]:.8f} residual {r.smallest_residuals[0]:.2e}", flush=True)
