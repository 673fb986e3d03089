// exp, expm1 and log1p for float as straight-line arithmetic, so that `#pragma omp simd` loops
// that call them vectorise (glibc's expf, expm1f and log1pf are opaque calls). Host code only.
//
// Polynomials of exp_f32 and log1p_unit_f32: least-squares fits (exp: on Chebyshev nodes against
// 50-digit values; log1p: weighted by 1/log1p(e) on 4,000 Chebyshev nodes of [0, 1] against
// double), rounded to float. Checked on every float of the stated domains against the
// double-precision library, with and without FMA contraction: exp_f32 within 1.3 ulp,
// log1p_unit_f32 within 1.7 ulp. expm1_f32 is within 3 ulp (tests/fastpath/test_cpu_kernels.py,
// through ELU).
#pragma once

#include <cstdint>
#include <limits>

namespace rdfast::vecmath {

constexpr float kLn2Hi = 0.693359375f;     // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with few bits
constexpr float kLn2Lo = -2.12194440e-4f;

inline float from_bits(int32_t bits) { return __builtin_bit_cast(float, bits); }

// e^x for x ≤ ½ln2 (e^x ≤ √2: no overflow to guard), exp_f32's core. x = n ln2 + r,
// |r| ≤ ½ln2: e^r = 1 + r + r² Q(r), times 2^n built in the exponent bits. Below x = −86.6 the
// result is e^−86.6 ≈ 2.4e-38 (no subnormals); NaN stays.
inline float exp_below_f32(float x) {
  constexpr float kMin = -86.6f, kLog2e = 1.44269504f;
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding then subtracting rounds to an integer
  const float xc = x < kMin ? kMin : x;
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  const float q = ((((1.98992755e-4f * r + 1.39336439e-3f) * r + 8.33329838e-3f) * r + 4.16664667e-2f) * r +
                   1.66666672e-1f) * r + 0.5f;
  const float er = 1.0f + r + r * r * q;
  const int32_t ni = static_cast<int32_t>(n == n ? n : 0.0f);  // n is in [−125, 128] or NaN
  return er * from_bits((ni + 126) << 23) * 2.0f;              // 2^n = 2^(n−1)·2 stays normal
}

// e^x for any x: as exp_below_f32 with x clamped to 88.72, +inf above it.
inline float exp_f32(float x) {
  constexpr float kMax = 88.72283f;
  const float y = exp_below_f32(x > kMax ? kMax : x);
  return x > kMax ? std::numeric_limits<float>::infinity() : y;
}

// e^x − 1 without the cancellation of exp_f32(x) − 1 near 0: for |x| ≤ ½ its Taylor polynomial
// to degree 9 (remainder below 2e-9 relative), else exp_f32(x) − 1 (e^x − 1 is then at least
// 0.39 in size, so exp_f32's 1.3 ulp stays within 3 ulp of the difference).
inline float expm1_f32(float x) {
  const float q = (((((((2.75573192e-6f * x + 2.48015873e-5f) * x + 1.98412698e-4f) * x + 1.38888889e-3f) * x +
                      8.33333333e-3f) * x + 4.16666667e-2f) * x + 1.66666667e-1f) * x + 0.5f);
  const float small = x + x * x * q;
  const float large = exp_f32(x) - 1.0f;
  return (x < 0.5f && x > -0.5f) ? small : large;  // NaN: large, which is NaN
}

// log(1 + e) for 0 ≤ e ≤ 1 (NaN stays): e − e²/2 + e³ R(e), R of degree 7 on all of [0, 1]
// (no branch to select).
inline float log1p_unit_f32(float e) {
  const float r = ((((((-3.56183201e-3f * e + 2.13670000e-2f) * e - 5.99979162e-2f) * e + 1.09358579e-1f) * e -
                     1.55203581e-1f) * e + 1.97590545e-1f) * e - 2.49726623e-1f) * e + 3.33321005e-1f;
  return e + e * e * (e * r - 0.5f);
}

}  // namespace rdfast::vecmath
