#pragma once
// Token sampling on the GPU with the rules of the CPU sampler (model/sampling.cpp): penalties
// (repetition over prompt+output ids, then presence/frequency over output ids), greedy argmax
// (lowest id among ties), or temperature, top-k (ties with the k-th stay), top-p (smallest
// prefix in (logit desc, id asc) order reaching top_p), min-p, then the inverse CDF in token-id
// order with the caller's uniform number sampling_uniform(seed, k). Also the log-softmax of
// the raw logits for the chosen token.

#include "model/dtype.hpp"
#include "model/sampling.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>
#include <vector>

namespace actorserve::gpu {

struct sampler_row {
  int32_t logits_row = 0;     // row of the logits matrix to sample from
  int32_t greedy = 1;
  float temperature = 1.0f;
  float top_p = 1.0f;
  float min_p = 0.0f;
  int32_t top_k = 0;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t repetition_offset = 0; // unique ids in penalty_ids[offset, offset + count)
  int32_t repetition_count = 0;
  int32_t frequency_offset = 0;  // unique output ids in penalty_ids, their counts in penalty_counts
  int32_t frequency_count = 0;
  double uniform = 0.0;          // sampling_uniform(seed, k)
};

struct sampler_args {
  const void* logits = nullptr; // [*, logits_stride] of dtype `type`
  int64_t logits_stride = 0;
  int32_t vocab_size = 0;
  const sampler_row* rows = nullptr; // [num_rows] (device)
  int32_t num_rows = 0;
  const int32_t* penalty_ids = nullptr;
  const int32_t* penalty_counts = nullptr;
  float* work = nullptr;             // [num_rows, vocab_size] fp32 scratch
  int32_t* out_tokens = nullptr;     // [num_rows]
  float* out_logprobs = nullptr;     // [num_rows] raw log-softmax of the chosen token
  float* out_log_normalizer = nullptr; // [num_rows] log-sum-exp of the raw logits
};

void launch_sampler(const sampler_args& args, dtype type, cudaStream_t stream);

/// The sampler row of one sequence (host side): its parameters, the uniform number
/// sampling_uniform(seed, k) and, when penalties are on, its unique penalized ids (and output
/// id counts) appended to penalty_ids / penalty_counts.
sampler_row make_sampler_row(const sequence_sampling_state& state, int32_t logits_row,
                             std::vector<int32_t>& penalty_ids, std::vector<int32_t>& penalty_counts);

} // namespace actorserve::gpu
