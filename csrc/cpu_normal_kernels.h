// Kernel template of the normals op (cpu_normal.cpp), included once per instruction set
// (cpu_isa.h), hence no include guard.
//
// Row r = n·M + m takes the Philox counters (b, m, items[n], step·4 + stream), b < n_blocks; the
// words (w0, w1, w2, w3) of counter b give its values 4b .. 4b + 3 by the Box–Muller transform of
// rdfast.sampling.rng.normal: with u_i = (w_i + ½)·2⁻³², r12 = √(−2 log u0), r34 = √(−2 log u2),
// (r12 cos 2πu1, r12 sin 2πu1, r34 cos 2πu3, r34 sin 2πu3), in double (vecmath_f64.h), then the
// first K values of the row rounded to T.

// One row's values in three vectorised passes over planes v_i[b] (b < n_blocks, plane i of the
// four Box–Muller outputs), which run about twice as fast as one pass doing everything: the words'
// uniforms; the transform in place; the first K values, interleaved (value 4b + i is v_i[b]), to T.
template <class T>
void normal_rows(const NormalArgs& a) {
  const int64_t M = a.n_chains, NB = a.n_blocks, K = a.dim, B = a.n_items * M;
  const uint32_t c3 = philox_c3(a);
  const uint32_t k0 = static_cast<uint32_t>(a.seed), k1 = static_cast<uint32_t>(a.seed >> 32);
  T* out = static_cast<T*>(a.out);
#pragma omp parallel if (B * NB >= kParallelMinTranscendental / 4)
  {
    std::vector<double> planes(4 * NB);
    double* v0 = planes.data();
    double* v1 = v0 + NB;
    double* v2 = v1 + NB;
    double* v3 = v2 + NB;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < B; ++r) {
      const uint32_t chain = static_cast<uint32_t>(r % M), item = static_cast<uint32_t>(a.items[r / M]);
#pragma omp simd
      for (int64_t b = 0; b < NB; ++b) {
        uint32_t w0 = static_cast<uint32_t>(b), w1 = chain, w2 = item, w3 = c3;
        philox4x32_10(w0, w1, w2, w3, k0, k1);
        v0[b] = unit_open(w0);
        v1[b] = unit_open(w1);
        v2[b] = unit_open(w2);
        v3[b] = unit_open(w3);
      }
#pragma omp simd
      for (int64_t b = 0; b < NB; ++b) {
        const double r12 = std::sqrt(-2.0 * vecmath::log_unit_f64(v0[b]));
        const double r34 = std::sqrt(-2.0 * vecmath::log_unit_f64(v2[b]));
        double c12, s12, c34, s34;
        vecmath::sincos_2pi_f64(v1[b], &c12, &s12);
        vecmath::sincos_2pi_f64(v3[b], &c34, &s34);
        v0[b] = r12 * c12;
        v1[b] = r12 * s12;
        v2[b] = r34 * c34;
        v3[b] = r34 * s34;
      }
      T* row = out + r * K;
      for (int64_t j = 0; j < K; ++j) row[j] = static_cast<T>(planes[(j & 3) * NB + (j >> 2)]);
    }
  }
}

inline void normals(int dtype, const NormalArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { normal_rows<std::remove_pointer_t<decltype(tag)>>(a); });
}
