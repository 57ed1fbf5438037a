#include "model/cpu_attention.hpp"

#include "model/cpu_kernels.hpp"
#include "model/cpu_kv_cache.hpp"
#include "model/thread_pool.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace actorserve {
namespace {

// Sequence index of every token of the step.
std::vector<int32_t> token_sequences(const step_batch& step) {
  std::vector<int32_t> seq_of(size_t(step.num_tokens()));
  size_t t = 0;
  for (size_t s = 0; s < step.seqs.size(); ++s)
    for (int32_t i = 0; i < step.seqs[s].num_new_tokens; ++i)
      seq_of[t++] = int32_t(s);
  return seq_of;
}

} // namespace

void write_kv(const step_batch& step, const float* qkv, int64_t qkv_stride, const attention_dims& dims,
              cpu_kv_cache& cache, int32_t layer) {
  const int64_t q_size = dims.num_heads * dims.head_dim, kv_size = dims.num_kv_heads * dims.head_dim;
  const int32_t block_size = cache.block_size();
  int64_t t = 0;
  for (const auto& s : step.seqs) {
    for (int32_t i = 0; i < s.num_new_tokens; ++i, ++t) {
      const int32_t pos = s.num_computed_tokens + i;
      const int32_t block = s.block_table[size_t(pos / block_size)];
      const float* row = qkv + t * qkv_stride;
      std::memcpy(cache.k(layer, block, pos % block_size), row + q_size, size_t(kv_size) * sizeof(float));
      std::memcpy(cache.v(layer, block, pos % block_size), row + q_size + kv_size, size_t(kv_size) * sizeof(float));
    }
  }
}

void paged_attention(thread_pool& pool, const step_batch& step, const float* qkv, int64_t qkv_stride,
                     const attention_dims& dims, cpu_kv_cache& cache, int32_t layer, float* out) {
  const std::vector<int32_t> seq_of = token_sequences(step);
  const int64_t num_tokens = step.num_tokens();
  const int64_t d = dims.head_dim;
  const int64_t group = dims.num_heads / dims.num_kv_heads;
  const int32_t block_size = cache.block_size();
  // One item per (token, head); long prefills have many, decodes few. Dynamic chunks balance
  // the causal rows, whose cost grows with the position.
  const int64_t items = num_tokens * dims.num_heads;
  const int64_t grain = std::max<int64_t>(1, items / (int64_t(pool.size()) * 16));
  pool.parallel_for(items, grain, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / dims.num_heads, h = item % dims.num_heads, kvh = h / group;
      const step_sequence& s = step.seqs[size_t(seq_of[size_t(t)])];
      const int32_t pos = step.positions[size_t(t)];
      const int32_t n_keys = pos + 1;
      if (int32_t(scores.size()) < n_keys)
        scores.resize(size_t(n_keys));
      const float* q = qkv + t * qkv_stride + h * d;
      float max_score = -INFINITY;
      for (int32_t j = 0; j < n_keys; ++j) {
        const float* k = cache.k(layer, s.block_table[size_t(j / block_size)], j % block_size) + kvh * d;
        const float sc = cpu::dot(q, k, d) * dims.scale;
        scores[size_t(j)] = sc;
        max_score = std::max(max_score, sc);
      }
      double sum = 0.0;
      for (int32_t j = 0; j < n_keys; ++j) {
        const float e = std::exp(scores[size_t(j)] - max_score);
        scores[size_t(j)] = e;
        sum += e;
      }
      float* o = out + t * dims.num_heads * d + h * d;
      std::fill(o, o + d, 0.0f);
      const float inv_sum = float(1.0 / sum);
      for (int32_t j = 0; j < n_keys; ++j) {
        const float* v = cache.v(layer, s.block_table[size_t(j / block_size)], j % block_size) + kvh * d;
        cpu::axpy(scores[size_t(j)] * inv_sum, v, o, d);
      }
    }
  });
}

} // namespace actorserve
