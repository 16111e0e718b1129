"""cnnlib's engine: the fast versions of the layers, kept apart from the lessons' code.

What it computes: exactly what the loop versions in cnnlib/conv.py and cnnlib/pool.py compute
(`conv2d_forward_naive`, ..., one loop per output element), up to rounding. The public
functions (cnnlib.conv2d_forward, maxpool2d_backward, ...) check their inputs in those layer
modules and then call in here; caches are shared, so either backward takes either forward's.
ReLU and the dense layer, which have no loop version, compute here what lessons 2 and 3
write (np.maximum(x, 0), x @ w, ...), in the engine's memory and on one BLAS thread.

Why it is shaped as it is (each choice measured, see benchmarks/README.md; lesson 11 builds
the convolution rung by rung):
- Work goes tap by tap, not window by window. A "tap" is one offset (p, q) inside the
  window; the pixels under tap (p, q) of every window form one strided slice of the input
  (windows.taps). So every layer is a loop over the KH*KW taps, each step a whole-array
  NumPy operation, never a loop over images or pixels.
- Convolution copies its windows into an im2col matrix laid out (C*KH*KW, N*H'*W'), one
  row per (channel, tap), with one same-order strided copy per tap (windows.im2col): several
  times faster than writing pixel rows (N*H'*W', C*KH*KW). The forward is then matrix
  products (conv.py): one per image for large maps, one per chunk of a few images for small
  ones, each chunk a few MiB (conv.CHUNK_BYTES) so the matrix is still in cache.
- dx goes back tap by tap: one product of a tap's weights with dout, then one `+=` into that
  tap's pixels; no second matrix (col2im), no `np.add.at`. With stride 1 each tap's pixels
  are one contiguous run of the flattened padded images (conv.runs), added several times
  faster than a strided slice, and dw multiplies dout by each tap's run, with no matrix.
- A large batch is cut into one slice per core, and threads take the slices through the
  layer at once, with BLAS held to one thread (parallel.py): NumPy copies on one core, and
  half of a conv layer's time is copying.
- The large arrays of the conv, max-pool and ReLU layers (outputs, dx, im2col matrices,
  padded copies, masks) come from arrays.py, which keeps each thread's buffers from one
  call to the next and hands one out again only once no array refers to it: a training step
  then page-faults no fresh memory in, whatever malloc does, and what a call returns stays
  as it was (lesson 11 measures it with arrays.KEEP off and on). memory.py's process-wide
  malloc setting is not needed for speed any more. Importing cnnlib changes nothing.

How it is tested: tests/engine/test_vectorized.py and tests/layers/test_conv.py,
test_pool.py, test_nonfinite.py and test_properties.py hold every fast function equal to its
loop version (and to finite differences, and tests/layers/test_torch_crosscheck.py to
PyTorch) on many shapes, strides and pads, with the batch split into threads and chunks and
each product mode forced by the fixtures of tests/conftest.py; tests/layers/test_modes.py
checks which path each case takes, tests/engine/test_parallel.py the threads and
tests/engine/test_arrays.py the reused memory.

Modules: conv.py, pool.py, relu.py (the layers), dense.py (the dense layer's products, on
one BLAS thread), windows.py (padding, taps, im2col), parallel.py (slices of the batch in
threads), arrays.py (the reused memory), memory.py (a process-wide malloc setting, kept for programs
that want it).
"""
