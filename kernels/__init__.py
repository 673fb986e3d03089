"""Triton kernels of rdfast's fused per-chain operations (installed as ``rdfast.kernels``).

One module per operation family: ``distortion``, ``leapfrog`` (begin/step/end),
``metropolis``, ``record``; ``metric`` and ``numerics`` hold shared elementwise helpers and
``tiles`` the blocks of rows and tiles of columns every kernel loops over. The
kernels are pure functions of their inputs; each module's ``prepare_<op>`` gives a kernel's
launch (grid, arguments, constexprs) and ``rdfast.backends.triton`` checks tensors and launches. Under ``TRITON_INTERPRET=1`` (set before this package is
imported) they run on CPU tensors through the Triton interpreter.
"""
