// log and (cos 2πu, sin 2πu) for double as straight-line arithmetic, so that the Box–Muller
// loop of the normals kernel (cpu_normal_kernels.h) vectorises (glibc's log, sin and cos are
// opaque calls). Host code only. Both take u in (0, 1) exactly representable, as the uniforms
// (w + ½)·2⁻³² of rdfast.sampling.rng are.
//
// Polynomials are Taylor series cut where the next term is below 1e-17 relative; coefficients
// are the exact values rounded to double. The normals made with them are within 4e-15 of the
// torch transform's (rdfast.sampling.rng.normal_twin) on 1.2 million draws
// (tests/fastpath/test_cpu_kernels.py).
#pragma once

#include <cstdint>

namespace rdfast::vecmath {

// log u for u in (0, 1): u = 2^k m with m in [√½, √2), log m = 2 atanh(s) = 2(s + s³/3 + … +
// s²¹/21), s = (m − 1)/(m + 1), |s| ≤ 0.172; k ln 2 with ln 2 split so that k·hi is exact.
inline double log_unit_f64(double u) {
  constexpr double kLn2Hi = 0.6931471803691238, kLn2Lo = 1.9082149292705877e-10, kSqrt2 = 1.4142135623730951;
  const int64_t bits = __builtin_bit_cast(int64_t, u);
  const double m1 = __builtin_bit_cast(double, (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000);  // [1, 2)
  const bool big = m1 > kSqrt2;
  const double m = big ? m1 * 0.5 : m1;
  const double k = static_cast<double>((bits >> 52) - 1023 + (big ? 1 : 0));
  const double s = (m - 1.0) / (m + 1.0);
  const double z = s * s;
  double p = 0.047619047619047616;  // Σ_{i=1..10} z^{i−1}/(2i + 1), Horner from i = 10
  p = p * z + 0.05263157894736842;
  p = p * z + 0.058823529411764705;
  p = p * z + 0.06666666666666667;
  p = p * z + 0.07692307692307693;
  p = p * z + 0.09090909090909091;
  p = p * z + 0.1111111111111111;
  p = p * z + 0.14285714285714285;
  p = p * z + 0.2;
  p = p * z + 0.3333333333333333;
  const double s2 = s + s;
  const double log_m = s2 + s2 * (z * p);
  return k * kLn2Hi + (k * kLn2Lo + log_m);
}

// cos 2πu and sin 2πu for u in (0, 1): 4u = q + f exactly, q the nearest integer, |f| ≤ ½; with
// θ = πf/2, (cos, sin) of 2πu is (cos θ, sin θ) turned by q quarter turns.
inline void sincos_2pi_f64(double u, double* cos_out, double* sin_out) {
  constexpr double kRound = 6755399441055744.0;  // 1.5·2^52: adding then subtracting rounds to an integer
  const double v = 4.0 * u;
  const double q = (v + kRound) - kRound;
  const double f = v - q;
  const double t = f * f;
  double s = 6.0669357311061955e-12;  // sin θ = f Σ_i (−1)^i (π/2)^{2i+1} t^i/(2i + 1)!, i ≤ 8
  s = s * t - 6.688035109811468e-10;
  s = s * t + 5.692172921967927e-08;
  s = s * t - 3.598843235212085e-06;
  s = s * t + 0.00016044118478735983;
  s = s * t - 0.004681754135318688;
  s = s * t + 0.07969262624616705;
  s = s * t - 0.6459640975062463;
  s = s * t + 1.5707963267948966;
  s = s * f;
  double c = -5.294400200734623e-13;  // cos θ = Σ_i (−1)^i (π/2)^{2i} t^i/(2i)!, i ≤ 9
  c = c * t + 6.565963114979473e-11;
  c = c * t - 6.386603083791852e-09;
  c = c * t + 4.710874778818172e-07;
  c = c * t - 2.5202042373060607e-05;
  c = c * t + 0.0009192602748394266;
  c = c * t - 0.02086348076335296;
  c = c * t + 0.25366950790104803;
  c = c * t - 1.2337005501361697;
  c = c * t + 1.0;
  const int64_t quarter = static_cast<int64_t>(q) & 3;
  const double cq = quarter & 1 ? s : c, sq = quarter & 1 ? c : s;  // odd quarters swap cos and sin
  *cos_out = (quarter == 1 || quarter == 2) ? -cq : cq;
  *sin_out = quarter >= 2 ? -sq : sq;
}

}  // namespace rdfast::vecmath
