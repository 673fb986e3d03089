"""Triton kernels of rdfast's fused per-chain operations (installed as ``rdfast.kernels``).

One module per operation family: ``distortion``, ``leapfrog`` (begin/step/end),
``metropolis``, ``record``; ``numerics`` holds shared elementwise helpers. The kernels are
pure functions of their inputs; ``rdfast.backends.triton`` checks tensors, picks
block sizes and launches them. Under ``TRITON_INTERPRET=1`` (set before this package is
imported) they run on CPU tensors through the Triton interpreter.
"""
