#pragma once
// fp32 kernels of the CPU backend. The dot-product kernels have an AVX2+FMA version (picked at
// run time) and a portable one. Every output element of `matmul` is computed with exactly the
// arithmetic of `dot` (same lanes, same order), whatever the tile it falls in, so a token gets
// bit-identical results alone, in a batch, or in a prefill chunk of any size.

#include <cstdint>

namespace actorserve {
class thread_pool;
}

namespace actorserve::cpu {

enum class kernel_isa { portable, avx2 };

/// The best instruction set this CPU supports.
kernel_isa detect_isa();
/// The set in use (initially detect_isa()); tests switch it to compare both versions.
kernel_isa active_isa();
void set_active_isa(kernel_isa isa);

/// sum_k a[k] * b[k]
float dot(const float* a, const float* b, int64_t n);
/// y[k] += alpha * x[k]
void axpy(float alpha, const float* x, float* y, int64_t n);

/// out[m, n] = dot(x[m, :], w[n, :]) (+ bias[n]) for m < num_rows, n < num_out.
/// x: [num_rows, k_dim] contiguous; w: [num_out, k_dim] (a PyTorch Linear weight);
/// bias: [num_out] or null; out: [num_rows, num_out] contiguous.
/// Threads split the output columns (weight rows); rows of x are tiled so that each weight
/// row is read from memory once per tile of tokens, not once per token.
void matmul(thread_pool& pool, const float* x, int64_t num_rows, int64_t k_dim, const float* w, int64_t num_out,
            const float* bias, float* out);

/// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, for `rows` rows of `n` (HF
/// RMSNorm in fp32). `out` may alias `x`.
void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out);

/// out[m, i] = silu(gate_up[m, i]) * gate_up[m, inter + i]; gate_up: [rows, 2 * inter].
void silu_mul(const float* gate_up, int64_t rows, int64_t inter, float* out);

/// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

} // namespace actorserve::cpu
