"""The dense layer's matrix products: what cnnlib/dense.py computes `x @ w`, `dout @ w.T` and
`x.T @ dout` with.

matmul(a, b) is a @ b, run with BLAS held to one thread (parallel.blas_one_thread). The
products are small (a LeNet step's: 64 x 784 by 784 x 10) but large enough for OpenBLAS to
run them on several threads, and after such a product its idle threads keep spinning on the
cores for a while: the conv and pool layers around it, which split their batch into one
thread per core, would share the cores with them (measured: a LeNet step about 1.5 times
slower, benchmarks/README.md). Holding BLAS to one thread costs about 10 us a call.
"""

from .parallel import blas_one_thread


def matmul(a, b):
    """a @ b, with BLAS on one thread."""
    with blas_one_thread():
        return a @ b
