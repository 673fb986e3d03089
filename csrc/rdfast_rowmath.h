// Per-row maths of the fused AIS/HMC ops, shared by the CPU and CUDA kernels.
//
// One definition of every formula of rdfast.backends.reference: the distortion terms and
// their gradients, the leapfrog kick, the metric's drift and kinetic energy, the Hamiltonian and
// the accept rule. Element maths runs in the compute dtype T (float or double), like the
// reference; sums and per-row scalars are double. (Step-size adaptation is not a kernel's
// business: rdfast.sampling.adapt updates ε from the accept indicators metropolis writes.)
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "op_args.h"
#include "vecmath_f32.h"

namespace rdfast {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2π)
constexpr float kSoftplusThreshold = 20.0f;  // torch.nn.functional.softplus: x > 20 -> x

// ---- elementary functions ------------------------------------------------------------

// e^x: float on the CPU through vecmath (vectorisable, ≤ 1.3 ulp), else the math library.
template <class T>
RDFAST_HD T exp_of(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return vecmath::exp_f32(x);
#endif
  return std::exp(x);
}

// e^x for x ≤ 0: float on the CPU through vecmath (≤ 1.3 ulp, no overflow guard), else the math library.
template <class T>
RDFAST_HD T exp_nonpositive_of(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return vecmath::exp_below_f32(x);
#endif
  return std::exp(x);
}

// log(1 + e) for 0 ≤ e ≤ 1: float on the CPU through vecmath (≤ 1.7 ulp), else log1p.
template <class T>
RDFAST_HD T log1p_unit_of(T e) {
#ifndef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return vecmath::log1p_unit_f32(e);
#endif
  return std::log1p(e);
}

// ---- distortion terms: per element, d-term in double, gradients in T --------------------

// Each kind's element maths in T (the *_value functions, which vectorising CPU loops use with
// the sum in a second pass) and as its d-term in double (the *_term functions).

// gaussian_nll given the precision e^{−v}: returns sq = (x − x̂)² e^{−v} (the d-term is sq + v;
// the ½ and log 2π are applied per row);  ∂d/∂x̂ = (x̂ − x) e^{−v}.
template <class T>
RDFAST_HD T gaussian_value(T x, T xhat, T prec, T* grad_xhat) {
  const T diff = xhat - x;
  *grad_xhat = diff * prec;
  return diff * diff * prec;
}

// gaussian_nll: ∂d/∂v = ½ (1 − sq) from sq = (x − x̂)² e^{−v}.
template <class T>
RDFAST_HD T gaussian_grad_logvar(T sq) {
  return T(0.5) * (T(1) - sq);
}

// gaussian_nll: term = (x − x̂)² e^{−v} + v;  ∂d/∂x̂ and ∂d/∂v as above.
template <class T>
RDFAST_HD double gaussian_term(T x, T xhat, T v, T* grad_xhat, T* grad_v) {
  const T sq = gaussian_value(x, xhat, exp_of(-v), grad_xhat);
  *grad_v = gaussian_grad_logvar(sq);
  return static_cast<double>(sq) + static_cast<double>(v);
}

// bernoulli_nll with logits ℓ = x̂: value = softplus(ℓ) − x ℓ;  ∂d/∂ℓ = σ(ℓ) − x.
// Both from e = e^{−|ℓ|}, which never overflows (stable for any finite ℓ, e.g. |ℓ| ≥ 80):
// softplus = max(ℓ, 0) + log1p(e) (ℓ past the threshold: ℓ, as torch), σ = 1/(1 + e) for
// ℓ ≥ 0 and e/(1 + e) below.
template <class T>
RDFAST_HD T bernoulli_value(T x, T logit, T* grad_xhat) {
  const T e = exp_nonpositive_of(-std::fabs(logit));
  const T smooth = (logit > T(0) ? logit : T(0)) + log1p_unit_of(e);
  const T softplus = logit > T(kSoftplusThreshold) ? logit : smooth;
  *grad_xhat = (logit >= T(0) ? T(1) : e) / (T(1) + e) - x;
  return softplus - x * logit;
}

// squared_error: value = (x − x̂)²;  ∂d/∂x̂ = 2 (x̂ − x).
template <class T>
RDFAST_HD T squared_value(T x, T xhat, T* grad_xhat) {
  const T diff = xhat - x;
  *grad_xhat = T(2) * diff;
  return diff * diff;
}

// The T part of an element's d-term (all of it but gaussian_nll's v) and ∂d/∂x̂ into *grad;
// prec = e^{−v} (gaussian_nll only).
template <class T, Kind kKind>
RDFAST_HD T element_value(T x, T xhat, T prec, T* grad) {
  if constexpr (kKind == Kind::GAUSSIAN_NLL) {
    return gaussian_value(x, xhat, prec, grad);
  } else if constexpr (kKind == Kind::BERNOULLI_NLL) {
    return bernoulli_value(x, xhat, grad);
  } else {
    return squared_value(x, xhat, grad);
  }
}

// Element j of a row: writes ∂d/∂x̂ (and ∂d/∂v for per-row logvar), returns its d-term.
// x, xhat, grad, grad_v point at the row (x at its item); logvar at the row for per-row
// logvar, else at the [1] or [P] array.
template <class T, Kind kKind, LogvarLayout kLogvar>
RDFAST_HD double distortion_element(const T* x, const T* xhat, const T* logvar, T* grad, T* grad_v,
                                    int64_t j) {
  if constexpr (kKind == Kind::GAUSSIAN_NLL) {
    T v = T(0);
    if constexpr (kLogvar == LogvarLayout::SCALAR) v = logvar[0];
    if constexpr (kLogvar == LogvarLayout::PER_PIXEL || kLogvar == LogvarLayout::PER_ROW) v = logvar[j];
    T gv;
    const double term = gaussian_term(x[j], xhat[j], v, &grad[j], &gv);
    if constexpr (kLogvar == LogvarLayout::PER_ROW) grad_v[j] = gv;
    return term;
  } else {
    return static_cast<double>(element_value<T, kKind>(x[j], xhat[j], T(1), &grad[j]));
  }
}

// d of a row from the sum of its P element terms (gaussian_nll adds P log 2π and halves).
template <Kind kKind>
RDFAST_HD double distortion_row(double term_sum, int64_t size) {
  if constexpr (kKind == Kind::GAUSSIAN_NLL) return 0.5 * (term_sum + static_cast<double>(size) * kLog2Pi);
  return term_sum;
}

// fn(DistortionTag<kind, layout>{}) for the pairs the kernels compile: gaussian_nll with every
// log-variance layout, the other kinds without one (their layout code is ignored). A new kind
// gets its term above and its case here.
template <Kind kKind, LogvarLayout kLogvar>
struct DistortionTag {
  static constexpr Kind kind = kKind;
  static constexpr LogvarLayout logvar = kLogvar;
};

template <class Fn>
decltype(auto) dispatch_distortion(int kind, int logvar_layout, Fn&& fn) {
  switch (static_cast<Kind>(kind)) {
    case Kind::GAUSSIAN_NLL:
      switch (static_cast<LogvarLayout>(logvar_layout)) {
        case LogvarLayout::NONE: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::NONE>{});
        case LogvarLayout::SCALAR: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::SCALAR>{});
        case LogvarLayout::PER_PIXEL: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::PER_PIXEL>{});
        case LogvarLayout::PER_ROW: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::PER_ROW>{});
      }
      throw std::invalid_argument("logvar_layout code must be 0..3, got " + std::to_string(logvar_layout));
    case Kind::BERNOULLI_NLL: return fn(DistortionTag<Kind::BERNOULLI_NLL, LogvarLayout::NONE>{});
    case Kind::SQUARED_ERROR: return fn(DistortionTag<Kind::SQUARED_ERROR, LogvarLayout::NONE>{});
  }
  throw std::invalid_argument("kind code must be 0..2, got " + std::to_string(kind));
}

// ---- leapfrog --------------------------------------------------------------------------

// p − step · ∇U with ∇U = ∇E + β g (prior gradient ∇E: z for the standard normal).
template <class T>
RDFAST_HD T kick(T p, T prior_grad, T g, T beta, T step) {
  return p - step * (prior_grad + beta * g);
}

// The metric M⁻¹ of one row: the drift velocity (M⁻¹p)_j and the terms p_j (M⁻¹p)_j of the
// kinetic energy K = ½ Σ_j p_j (M⁻¹p)_j. One specialisation per rdfast::MetricLayout.
template <class T, MetricLayout kMetric>
struct RowMetric;

template <class T>
struct RowMetric<T, MetricLayout::IDENTITY> {
  template <class Args>
  RDFAST_HD RowMetric(const Args&, int64_t) {}
  RDFAST_HD T velocity(int64_t, T p) const { return p; }
  RDFAST_HD double kinetic_term(int64_t, T p) const { return static_cast<double>(p) * static_cast<double>(p); }
};

// M⁻¹ = diag(m) per item: row r reads m = inv_mass[r / M] [K].
template <class T>
struct RowMetric<T, MetricLayout::DIAGONAL> {
  const T* m;
  template <class Args>
  RDFAST_HD RowMetric(const Args& a, int64_t r)
      : m(static_cast<const T*>(a.inv_mass) + (r / a.metric_chains) * a.dim) {}
  RDFAST_HD T velocity(int64_t j, T p) const { return m[j] * p; }
  RDFAST_HD double kinetic_term(int64_t j, T p) const {
    return static_cast<double>(p) * static_cast<double>(p) * static_cast<double>(m[j]);
  }
};

// H = E(z) + β d + K, with E = ½‖z‖² or the given prior energy and K = ½ Σ kinetic terms.
RDFAST_HD double hamiltonian(double prior_energy, double beta, double d, double kinetic_sum) {
  return prior_energy + beta * d + 0.5 * kinetic_sum;
}

// ---- Metropolis ------------------------------------------------------------------------

// Accept iff H1 is finite and log u < H0 − H1.
RDFAST_HD bool accepts(double h0, double h1, double u) {
  return std::isfinite(h1) && std::log(u) < h0 - h1;
}

// The per-row scalars after the accept decision: divergence and acceptance counters, the
// cached distortion of the selected state, the accept indicator and probability.
RDFAST_HD void finish_row(const MetropolisArgs& a, int64_t r, double h1, bool accepted) {
  const bool finite = std::isfinite(h1);
  if (!finite) a.n_diverge[r] += 1;
  if (accepted) {
    a.d0[r] = a.d[r];
    a.n_accept[r] += 1;
  }
  const double ratio = std::exp(a.h0[r] - h1);
  a.accepted[r] = accepted ? 1.0 : 0.0;
  a.accept_prob[r] = finite ? (ratio > 1.0 ? 1.0 : ratio) : 0.0;  // NaN stays NaN, as torch.clamp
}

// ---- record --------------------------------------------------------------------------

// The shift of a logsumexp: the maximum, or 0 when it is infinite (as torch.logsumexp).
RDFAST_HD double logsumexp_shift(double max_logw) {
  return std::isinf(max_logw) ? 0.0 : max_logw;
}

// Running maximum that propagates NaN (as torch.amax).
RDFAST_HD double nan_max(double a, double b) {
  return (a != a || b != b) ? a + b : (a > b ? a : b);
}

// A chain's share of the weighted distortion: w·d, or 0 when w == 0 (d may be non-finite).
RDFAST_HD double weighted_distortion(double w, double d) {
  return w > 0.0 ? w * d : 0.0;
}

}  // namespace rdfast
