#pragma once
// The top-k log-probabilities of the raw logits (before penalties and temperature), best
// first, ties to the lower id: what the OpenAI `logprobs` option returns.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

struct logprobs_args {
  const void* logits = nullptr;  // [*, logits_stride]
  int64_t logits_stride = 0;
  int32_t vocab_size = 0;
  const int32_t* rows = nullptr;           // [num_rows] logits row of each output row
  const float* log_normalizer = nullptr;   // [num_rows] log-sum-exp of each row (from the sampler)
  int32_t num_rows = 0;
  int32_t k = 0;                           // top entries per row (<= 64)
  int32_t* out_ids = nullptr;              // [num_rows, k]
  float* out_logprobs = nullptr;           // [num_rows, k]
};

void launch_logprobs(const logprobs_args& args, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
