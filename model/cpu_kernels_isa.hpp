#pragma once
// Internal to the CPU kernels: the per-instruction-set entry points behind model/cpu_kernels.hpp.

#include <cstdint>

namespace actorserve::cpu::detail {

// Computes out rows [0, num_rows) x columns [col_begin, col_end) of matmul (see cpu_kernels.hpp).
using matmul_cols_fn = void (*)(const float* x, int64_t num_rows, int64_t k_dim, const float* w, int64_t num_out,
                                const float* bias, float* out, int64_t col_begin, int64_t col_end);
using dot_fn = float (*)(const float* a, const float* b, int64_t n);
using axpy_fn = void (*)(float alpha, const float* x, float* y, int64_t n);

struct isa_kernels {
  matmul_cols_fn matmul_cols;
  dot_fn dot;
  axpy_fn axpy;
};

const isa_kernels& portable_kernels();
const isa_kernels& avx2_kernels();

} // namespace actorserve::cpu::detail
