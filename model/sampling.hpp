#pragma once
// Sampling parameters and the CPU sampler. The CUDA sampler implements the same rules so that
// both backends pick the same token from the same logits.
//
// Determinism: the uniform number used for a sequence's k-th sampled token is a pure function
// of (seed, k), so a sequence samples the same tokens alone or in any batch, and after a
// preemption that recomputes it. Requests without a seed get one drawn at random on arrival.

#include <cstdint>
#include <utility>
#include <vector>

namespace actorserve {

struct sampling_params {
  float temperature = 1.0f;        // 0: greedy
  float top_p = 1.0f;              // (0, 1]
  int32_t top_k = 0;               // 0 or -1: disabled
  float min_p = 0.0f;              // [0, 1]
  float repetition_penalty = 1.0f; // > 0; applied over prompt and output tokens (HF rule)
  float presence_penalty = 0.0f;   // [-2, 2]; output tokens (OpenAI rule)
  float frequency_penalty = 0.0f;  // [-2, 2]; output tokens (OpenAI rule)
  uint64_t seed = 0;
  int32_t logprobs = -1;           // -1: none; k >= 0: chosen token's logprob plus top k

  bool greedy() const { return temperature <= 0.0f; }
};

/// What a backend needs per sequence to sample: owned by the executor, one per live sequence.
struct sequence_sampling_state {
  sampling_params params;
  std::vector<int32_t> prompt_token_ids; // for the repetition penalty
  std::vector<int32_t> output_token_ids; // grows as tokens are sampled
};

struct sampled_token {
  int32_t token = -1;
  // log-softmax of the raw logits, before penalties and temperature (vLLM's default
  // "raw_logprobs"), for the sampled token and the top ones.
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs; // best first, when params.logprobs > 0
};

/// The uniform number in [0, 1) for the k-th sampled token of a sequence seeded `seed`.
double sampling_uniform(uint64_t seed, uint64_t k);

/// Samples one token from `logits` [vocab_size] (modified in place by penalties and
/// temperature) for `state`, whose output_token_ids.size() is k. Order: repetition penalty,
/// presence/frequency penalties, then greedy (temperature below 1e-5: argmax, lowest id on
/// ties) or temperature, top-k, top-p, min-p and the inverse CDF over the surviving tokens in
/// id order at u = sampling_uniform(seed, k).
sampled_token sample_token(float* logits, int32_t vocab_size, const sequence_sampling_state& state);

} // namespace actorserve
