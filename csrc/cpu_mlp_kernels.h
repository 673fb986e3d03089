// Kernel templates of the MLP fast path, included once per instruction set by cpu_mlp.cpp
// (inside a namespace and a `#pragma GCC target` region), hence no include guard.
//
// float32 uses branch-free exp and tanh that vectorise (relative error below 2e-7, about
// 1.5 ulp); float64 uses the standard library.

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

template <class T, MlpActivation kAct>
inline T activate(T a, T slope) {
  if constexpr (kAct == MlpActivation::TANH) return act_tanh(a);
  if constexpr (kAct == MlpActivation::SIGMOID) return act_sigmoid(a);
  if constexpr (kAct == MlpActivation::RELU) return a < T(0) ? T(0) : a;  // NaN passes through, as torch.relu
  if constexpr (kAct == MlpActivation::LEAKY_RELU) return a < T(0) ? a * slope : a;
  return a;
}

// φ'(a) from the output h = φ(a), for the output activations.
template <class T, MlpActivation kAct>
inline T derivative(T h) {
  if constexpr (kAct == MlpActivation::TANH) return T(1) - h * h;
  if constexpr (kAct == MlpActivation::SIGMOID) return h * (T(1) - h);
  return T(1);
}

template <class T, MlpActivation kAct>
void bias_act_rows(const BiasActArgs& a) {
  T* h = static_cast<T*>(a.a);
  const T* b = static_cast<const T*>(a.bias);
  const T slope = static_cast<T>(a.slope);
  const int64_t R = a.rows, W = a.width;
#pragma omp parallel for schedule(static) \
    if (R * W >= (kAct == MlpActivation::TANH || kAct == MlpActivation::SIGMOID ? kParallelMinActivations : kParallelMinElements))
  for (int64_t r = 0; r < R; ++r) {
    T* hr = h + r * W;
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) hr[j] = activate<T, kAct>(hr[j] + b[j], slope);
  }
}

// One row: x̂ = φ(a + b); gaussian_nll: sq = (x̂ − x)² e^{−v}, ∂d/∂x̂ = (x̂ − x) e^{−v};
// squared_error: sq = (x̂ − x)², ∂d/∂x̂ = 2 (x̂ − x); δ = ∂d/∂x̂ · φ'(x̂) overwrites a.
// Pass 1 (all in T, full vector width) writes δ and sq (into ``sq``); pass 2 sums the terms
// sq (+ v for gaussian_nll) in double, as the reference. prec = e^{−v}: [P] or [1].
template <class T, Kind kKind, MlpActivation kAct, bool kPerPixel>
inline double output_row(T* ar, const T* b, const T* xr, const T* prec, const T* v, int64_t P, T* sq) {
  const T p0 = kKind == Kind::GAUSSIAN_NLL ? prec[0] : T(2);
#pragma omp simd
  for (int64_t j = 0; j < P; ++j) {
    const T xhat = activate<T, kAct>(ar[j] + b[j], T(0));
    const T diff = xhat - xr[j];
    const T pj = kKind == Kind::GAUSSIAN_NLL && kPerPixel ? prec[j] : p0;  // squared_error: ∂d/∂x̂ = 2 diff
    sq[j] = kKind == Kind::GAUSSIAN_NLL ? diff * diff * pj : diff * diff;
    ar[j] = diff * pj * derivative<T, kAct>(xhat);
  }
  double sum = 0.0;
  if constexpr (kKind == Kind::GAUSSIAN_NLL && kPerPixel) {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += static_cast<double>(sq[j]) + static_cast<double>(v[j]);
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += static_cast<double>(sq[j]);
    if constexpr (kKind == Kind::GAUSSIAN_NLL) sum += static_cast<double>(P) * static_cast<double>(v[0]);
  }
  return sum;
}

template <class T, Kind kKind, MlpActivation kAct, bool kPerPixel>
void output_rows(const MlpOutputArgs& a) {
  T* pre = static_cast<T*>(a.a);
  const T* b = static_cast<const T*>(a.bias);
  const T* x = static_cast<const T*>(a.x);
  const T* v = static_cast<const T*>(a.logvar);
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  std::vector<T> prec(kKind == Kind::GAUSSIAN_NLL ? (kPerPixel ? P : 1) : 0);  // e^{−v} in T, as the reference
  for (size_t j = 0; j < prec.size(); ++j) prec[j] = std::exp(-v[j]);
#pragma omp parallel if (B * P >= kParallelMinActivations)
  {
    std::vector<T> sq(P);  // one row's terms
#pragma omp for schedule(static)
    for (int64_t r = 0; r < B; ++r) {
      const double sum = output_row<T, kKind, kAct, kPerPixel>(pre + r * P, b, x + (r / M) * P, prec.data(), v, P,
                                                                sq.data());
      a.d[r] = distortion_row<kKind>(sum, P);
    }
  }
}

template <class T, Kind kKind>
void output_kind(const MlpOutputArgs& a) {
  const bool per_pixel = a.logvar_layout == static_cast<int>(LogvarLayout::PER_PIXEL);
  switch (static_cast<MlpActivation>(a.act)) {
    case MlpActivation::IDENTITY:
      return per_pixel ? output_rows<T, kKind, MlpActivation::IDENTITY, true>(a) : output_rows<T, kKind, MlpActivation::IDENTITY, false>(a);
    case MlpActivation::TANH:
      return per_pixel ? output_rows<T, kKind, MlpActivation::TANH, true>(a) : output_rows<T, kKind, MlpActivation::TANH, false>(a);
    case MlpActivation::SIGMOID:
      return per_pixel ? output_rows<T, kKind, MlpActivation::SIGMOID, true>(a) : output_rows<T, kKind, MlpActivation::SIGMOID, false>(a);
    default: throw std::invalid_argument("mlp_output: act must be identity, tanh or sigmoid, got " + std::to_string(a.act));
  }
}

template <class T>
void output_typed(const MlpOutputArgs& a) {
  const auto layout = static_cast<LogvarLayout>(a.logvar_layout);
  if (a.kind == static_cast<int>(Kind::GAUSSIAN_NLL)) {
    if (layout != LogvarLayout::SCALAR && layout != LogvarLayout::PER_PIXEL)
      throw std::invalid_argument("mlp_output: gaussian_nll needs a scalar or per-pixel logvar");
    return output_kind<T, Kind::GAUSSIAN_NLL>(a);
  }
  if (a.kind == static_cast<int>(Kind::SQUARED_ERROR)) return output_kind<T, Kind::SQUARED_ERROR>(a);
  throw std::invalid_argument("mlp_output: kind must be gaussian_nll or squared_error, got " + std::to_string(a.kind));
}

template <class T>
void bias_act_typed(const BiasActArgs& a) {
  switch (static_cast<MlpActivation>(a.act)) {
    case MlpActivation::IDENTITY: return bias_act_rows<T, MlpActivation::IDENTITY>(a);
    case MlpActivation::TANH: return bias_act_rows<T, MlpActivation::TANH>(a);
    case MlpActivation::SIGMOID: return bias_act_rows<T, MlpActivation::SIGMOID>(a);
    case MlpActivation::RELU: return bias_act_rows<T, MlpActivation::RELU>(a);
    case MlpActivation::LEAKY_RELU: return bias_act_rows<T, MlpActivation::LEAKY_RELU>(a);
    default: throw std::invalid_argument("mlp_bias_act: unknown activation code " + std::to_string(a.act));
  }
}

inline void bias_act(int dtype, const BiasActArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { bias_act_typed<std::remove_pointer_t<decltype(tag)>>(a); });
}

inline void output(int dtype, const MlpOutputArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { output_typed<std::remove_pointer_t<decltype(tag)>>(a); });
}
