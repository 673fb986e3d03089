"""Decoder evaluation without a generic autograd graph: plain MLPs with fused compiled kernels."""
