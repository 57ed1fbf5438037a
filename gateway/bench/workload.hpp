#pragma once
// The workload of `actorserve bench serve` and `bench throughput`, defined like vLLM's
// benchmarks: a random dataset (input and output lengths drawn uniformly from
// [len * (1 - range_ratio), len * (1 + range_ratio)], prompts of random token ids, fixed seed)
// and request arrival times (Poisson process at `request_rate`, or gamma-distributed gaps with
// `burstiness`; all at once for an infinite rate).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace actorserve::gateway::bench {

struct random_dataset_options {
  int32_t num_prompts = 1000;
  int32_t input_len = 1024;
  int32_t output_len = 128;
  double range_ratio = 0.0;   // [0, 1)
  int32_t prefix_len = 0;     // a prefix of random tokens shared by every prompt
  uint64_t seed = 0;
  int64_t vocab_size = 0;     // token ids are drawn from [first_token_id, vocab_size)
  int64_t first_token_id = 0; // skip special tokens at the start of the vocabulary
  std::vector<int32_t> excluded_ids; // special tokens elsewhere in the vocabulary
};

struct bench_request {
  std::vector<int32_t> prompt_token_ids;
  int32_t output_len = 0;
};

/// Throws std::invalid_argument for impossible options (empty vocabulary, ratio out of range).
std::vector<bench_request> make_random_dataset(const random_dataset_options& options);

/// Seconds from the start at which each of `count` requests is sent: 0 for all when the rate is
/// infinite; otherwise cumulative gaps drawn from a gamma distribution with mean 1 / rate and
/// shape `burstiness` (1: exponential gaps, a Poisson process).
std::vector<double> arrival_times(size_t count, double request_rate, double burstiness, uint64_t seed);

inline constexpr double infinite_rate = std::numeric_limits<double>::infinity();

} // namespace actorserve::gateway::bench
