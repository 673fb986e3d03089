// Kernel templates of the MLP fast path, included once per instruction set by cpu_mlp.cpp
// (cpu_isa.h), hence no include guard. The output kernel shares the distortion op's row maths
// (cpu_distortion_kernels.h).
//
// float32 uses branch-free exp, expm1 and tanh that vectorise (relative error below 2e-7, about
// 1.5 ulp; expm1 within 3 ulp); float64 uses the standard library.

#include "cpu_distortion_kernels.h"

// e^x for float with |x| ≤ 87 (the caller guarantees the range; NaN gives NaN): x = n ln2 + r,
// |r| ≤ ½ln2, e^r by a degree-6 polynomial (least-squares fit, relative error < 2e-7), 2^n
// from the exponent bits. vecmath::exp_f32 handles any x but costs a third more here.
inline float exp_in_range(float x) {
  const float shifter = 12582912.0f;  // 1.5 · 2^23: adding then subtracting rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln 2 = hi + lo
  float p = 0.00137514085508883f;
  p = p * r + 0.008368918672204018f;
  p = p * r + 0.04166953265666962f;
  p = p * r + 0.166665181517601f;
  p = p * r + 0.49999988079071045f;
  p = p * r * r + r + 1.0f;
  return p * __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
}

// tanh for float: x + x³ Q(x²) for |x| < 0.55 (least-squares fit), else
// sign(x) (1 − 2 / (e^{2|x|} + 1)) with |x| clamped to 9 (tanh(9) rounds to 1).
inline float fast_tanh(float x) {
  const float u = x * x;
  float q = -0.006356495898216963f;
  q = q * u + 0.021127240732312202f;
  q = q * u - 0.05386507883667946f;
  q = q * u + 0.13332699239253998f;
  q = q * u - 0.33333319425582886f;
  const float small = x + x * u * q;
  const float ax = std::fabs(x);
  const float large = std::copysign(1.0f - 2.0f / (exp_in_range(2.0f * std::min(ax, 9.0f)) + 1.0f), x);
  return ax < 0.55f ? small : large;
}

inline float act_tanh(float x) { return fast_tanh(x); }
inline double act_tanh(double x) { return std::tanh(x); }
inline float act_sigmoid(float x) { return 1.0f / (1.0f + exp_in_range(std::min(std::max(-x, -87.0f), 87.0f))); }
inline double act_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline float act_expm1(float x) { return vecmath::expm1_f32(x); }
inline double act_expm1(double x) { return std::expm1(x); }

// φ(a); param: the leaky ReLU's negative slope, or ELU's α (α(e^a − 1) for a ≤ 0).
template <class T, MlpActivation kAct>
inline T activate(T a, T param) {
  if constexpr (kAct == MlpActivation::TANH) return act_tanh(a);
  if constexpr (kAct == MlpActivation::SIGMOID) return act_sigmoid(a);
  if constexpr (kAct == MlpActivation::RELU) return a < T(0) ? T(0) : a;  // NaN passes through, as torch.relu
  if constexpr (kAct == MlpActivation::LEAKY_RELU) return a < T(0) ? a * param : a;
  if constexpr (kAct == MlpActivation::ELU) return a > T(0) ? a : param * act_expm1(a);
  return a;
}

constexpr bool transcendental(MlpActivation act) {
  return act == MlpActivation::TANH || act == MlpActivation::SIGMOID || act == MlpActivation::ELU;
}

// φ'(a) from the output h = φ(a), for the output activations.
template <class T, MlpActivation kAct>
inline T derivative(T h) {
  if constexpr (kAct == MlpActivation::TANH) return T(1) - h * h;
  if constexpr (kAct == MlpActivation::SIGMOID) return h * (T(1) - h);
  return T(1);
}

// δ ⊙ φ'(a) from h = φ(a), as torch's tanh/sigmoid/threshold/leaky_relu/elu backward with the
// result: tanh δ(1 − h²); sigmoid δ(1 − h)h; ReLU 0 where h ≤ 0; leaky ReLU δ·s unless h > 0;
// ELU (α ≥ 0) δ(h + α) where h ≤ 0. (Where h is NaN, d is NaN and the proposal is rejected.)
template <class T, MlpActivation kAct>
inline T times_slope(T delta, T h, T param) {
  if constexpr (kAct == MlpActivation::TANH) return delta * (T(1) - h * h);
  if constexpr (kAct == MlpActivation::SIGMOID) return delta * (T(1) - h) * h;
  if constexpr (kAct == MlpActivation::RELU) return h <= T(0) ? T(0) : delta;
  if constexpr (kAct == MlpActivation::LEAKY_RELU) return h > T(0) ? delta : delta * param;
  if constexpr (kAct == MlpActivation::ELU) return h <= T(0) ? delta * (h + param) : delta;
  return delta;
}

template <class T, MlpActivation kAct>
void act_backward_rows(const ActBackwardArgs& a) {
  T* delta = static_cast<T*>(a.delta);
  const T* h = static_cast<const T*>(a.h);
  const T param = static_cast<T>(a.param);
  const int64_t R = a.rows, W = a.width;
#pragma omp parallel for schedule(static) if (R * W >= kParallelMinElements)
  for (int64_t r = 0; r < R; ++r) {
    T* dr = delta + r * W;
    const T* hr = h + r * W;
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) dr[j] = times_slope<T, kAct>(dr[j], hr[j], param);
  }
}

template <class T, MlpActivation kAct>
void bias_act_rows(const BiasActArgs& a) {
  T* h = static_cast<T*>(a.a);
  const T* b = static_cast<const T*>(a.bias);
  const T param = static_cast<T>(a.param);
  const int64_t R = a.rows, W = a.width;
#pragma omp parallel for schedule(static) \
    if (R * W >= (transcendental(kAct) ? kParallelMinTranscendental : kParallelMinElements))
  for (int64_t r = 0; r < R; ++r) {
    T* hr = h + r * W;
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) hr[j] = activate<T, kAct>(hr[j] + b[j], param);
  }
}

// Rows of the output kernel: pass 1 (in T) h = φ(a + b), x̂ = s·h + c, the d-term part and
// ∂d/∂x̂ of each element (cpu_distortion_kernels.h), δ = ∂d/∂x̂ · s · φ'(h) over a; pass 2 the
// row's d in double.
template <class T, Kind kKind, MlpActivation kAct, LogvarLayout kLogvar>
void output_rows(const MlpOutputArgs& a) {
  T* pre = static_cast<T*>(a.a);
  const T* b = static_cast<const T*>(a.bias);
  const T* x = static_cast<const T*>(a.x);
  const T* v = static_cast<const T*>(a.logvar);
  const T scale = static_cast<T>(a.scale), shift = static_cast<T>(a.shift);
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  constexpr bool kPerPixel = kLogvar == LogvarLayout::PER_PIXEL;
  const std::vector<T> prec = fixed_precision<T, kLogvar>(v, P);
#pragma omp parallel if (B * P >= (transcendental(kAct) ? kParallelMinTranscendental \
                                                        : parallel_threshold<kKind, kLogvar>()))
  {
    std::vector<T> values(P);  // one row's d-term parts
#pragma omp for schedule(static)
    for (int64_t r = 0; r < B; ++r) {
      T* ar = pre + r * P;
      const T* xr = x + (r / M) * P;
#pragma omp simd
      for (int64_t j = 0; j < P; ++j) {
        const T h = activate<T, kAct>(ar[j] + b[j], T(0));
        T grad;
        values[j] = element_value<T, kKind>(xr[j], scale * h + shift, prec[kPerPixel ? j : 0], &grad);
        ar[j] = grad * scale * derivative<T, kAct>(h);
      }
      a.d[r] = distortion_row<kKind>(row_sum<T, kKind, kLogvar>(values.data(), v, P), P);
    }
  }
}

template <class T, Kind kKind, LogvarLayout kLogvar>
void output_act(const MlpOutputArgs& a) {
  switch (static_cast<MlpActivation>(a.act)) {
    case MlpActivation::IDENTITY: return output_rows<T, kKind, MlpActivation::IDENTITY, kLogvar>(a);
    case MlpActivation::TANH: return output_rows<T, kKind, MlpActivation::TANH, kLogvar>(a);
    case MlpActivation::SIGMOID: return output_rows<T, kKind, MlpActivation::SIGMOID, kLogvar>(a);
    default: throw std::invalid_argument("mlp_output: act must be identity, tanh or sigmoid, got " + std::to_string(a.act));
  }
}

template <class T>
void bias_act_typed(const BiasActArgs& a) {
  switch (static_cast<MlpActivation>(a.act)) {
    case MlpActivation::IDENTITY: return bias_act_rows<T, MlpActivation::IDENTITY>(a);
    case MlpActivation::TANH: return bias_act_rows<T, MlpActivation::TANH>(a);
    case MlpActivation::SIGMOID: return bias_act_rows<T, MlpActivation::SIGMOID>(a);
    case MlpActivation::RELU: return bias_act_rows<T, MlpActivation::RELU>(a);
    case MlpActivation::LEAKY_RELU: return bias_act_rows<T, MlpActivation::LEAKY_RELU>(a);
    case MlpActivation::ELU: return bias_act_rows<T, MlpActivation::ELU>(a);
    default: throw std::invalid_argument("mlp_bias_act: unknown activation code " + std::to_string(a.act));
  }
}

template <class T>
void act_backward_typed(const ActBackwardArgs& a) {
  switch (static_cast<MlpActivation>(a.act)) {
    case MlpActivation::IDENTITY: return;
    case MlpActivation::TANH: return act_backward_rows<T, MlpActivation::TANH>(a);
    case MlpActivation::SIGMOID: return act_backward_rows<T, MlpActivation::SIGMOID>(a);
    case MlpActivation::RELU: return act_backward_rows<T, MlpActivation::RELU>(a);
    case MlpActivation::LEAKY_RELU: return act_backward_rows<T, MlpActivation::LEAKY_RELU>(a);
    case MlpActivation::ELU: return act_backward_rows<T, MlpActivation::ELU>(a);
    default: throw std::invalid_argument("mlp_act_backward: unknown activation code " + std::to_string(a.act));
  }
}

inline void act_backward(int dtype, const ActBackwardArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { act_backward_typed<std::remove_pointer_t<decltype(tag)>>(a); });
}

inline void bias_act(int dtype, const BiasActArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { bias_act_typed<std::remove_pointer_t<decltype(tag)>>(a); });
}

// Every built-in kind with a fixed log-variance (none, scalar or per-pixel; not per-row).
inline void output(int dtype, const MlpOutputArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_distortion(a.kind, a.logvar_layout, [&](auto d) {
      if constexpr (d.logvar == LogvarLayout::PER_ROW) {
        throw std::invalid_argument("mlp_output: a per-row log-variance is not fused");
      } else {
        output_act<T, d.kind, d.logvar>(a);
      }
    });
  });
}
