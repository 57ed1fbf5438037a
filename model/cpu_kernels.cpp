#include "model/cpu_kernels.hpp"

#include "model/cpu_kernels_isa.hpp"
#include "model/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

namespace actorserve::cpu {
namespace detail {
namespace {

// Portable versions: 8 partial sums like the AVX2 lanes, without FMA. Used only on CPUs
// without AVX2 (and by the test that compares both).
float dot_portable(const float* a, const float* b, int64_t n) {
  float lanes[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l)
      lanes[l] += a[k + l] * b[k + l];
  for (int l = 0; k < n; ++k, ++l)
    lanes[l] += a[k] * b[k];
  float s4[4], s2[2];
  for (int l = 0; l < 4; ++l) s4[l] = lanes[l] + lanes[l + 4];
  for (int l = 0; l < 2; ++l) s2[l] = s4[l] + s4[l + 2];
  return s2[0] + s2[1];
}

void axpy_portable(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += alpha * x[i];
}

void matmul_cols_portable(const float* x, int64_t num_rows, int64_t k_dim, const float* w, int64_t num_out,
                          const float* bias, float* out, int64_t col_begin, int64_t col_end) {
  for (int64_t c = col_begin; c < col_end; ++c)
    for (int64_t r = 0; r < num_rows; ++r)
      out[r * num_out + c] = dot_portable(x + r * k_dim, w + c * k_dim, k_dim) + (bias ? bias[c] : 0.0f);
}

} // namespace

const isa_kernels& portable_kernels() {
  static const isa_kernels k{matmul_cols_portable, dot_portable, axpy_portable};
  return k;
}

} // namespace detail

namespace {

std::atomic<const detail::isa_kernels*>& active_kernels() {
  static std::atomic<const detail::isa_kernels*> k{detect_isa() == kernel_isa::avx2 ? &detail::avx2_kernels()
                                                                                     : &detail::portable_kernels()};
  return k;
}

const detail::isa_kernels& kernels() { return *active_kernels().load(std::memory_order_relaxed); }

} // namespace

kernel_isa detect_isa() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return kernel_isa::avx2;
#endif
  return kernel_isa::portable;
}

kernel_isa active_isa() {
  return active_kernels().load() == &detail::portable_kernels() ? kernel_isa::portable : kernel_isa::avx2;
}

void set_active_isa(kernel_isa isa) {
  active_kernels().store(isa == kernel_isa::avx2 && detect_isa() == kernel_isa::avx2 ? &detail::avx2_kernels()
                                                                                     : &detail::portable_kernels());
}

float dot(const float* a, const float* b, int64_t n) { return kernels().dot(a, b, n); }

void axpy(float alpha, const float* x, float* y, int64_t n) { kernels().axpy(alpha, x, y, n); }

void matmul(thread_pool& pool, const float* x, int64_t num_rows, int64_t k_dim, const float* w, int64_t num_out,
            const float* bias, float* out) {
  const auto fn = kernels().matmul_cols;
  // Chunks of weight rows: ~64 KiB of weights at least, so that a chunk is worth a hand-off.
  const int64_t grain = std::max<int64_t>(8, (16384 / std::max<int64_t>(1, k_dim)) / 8 * 8);
  pool.parallel_for(num_out, grain, [&](int64_t begin, int64_t end) {
    fn(x, num_rows, k_dim, w, num_out, bias, out, begin, end);
  });
}

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* o = out + r * n;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < n; ++i)
      sum_sq += double(xr[i]) * double(xr[i]);
    const float inv_rms = float(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
    for (int64_t i = 0; i < n; ++i)
      o[i] = weight[i] * (xr[i] * inv_rms);
  }
}

void silu_mul(const float* gate_up, int64_t rows, int64_t inter, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * inter;
    const float* u = g + inter;
    float* o = out + r * inter;
    for (int64_t i = 0; i < inter; ++i)
      o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += x[i];
}

} // namespace actorserve::cpu
