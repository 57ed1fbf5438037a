#include "gateway/bench/workload.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace actorserve::gateway::bench {
namespace {

int32_t scaled(int32_t len, double ratio, bool upper) {
  return int32_t(std::floor(double(len) * (upper ? 1.0 + ratio : 1.0 - ratio)));
}

} // namespace

std::vector<bench_request> make_random_dataset(const random_dataset_options& o) {
  if (o.range_ratio < 0.0 || o.range_ratio >= 1.0)
    throw std::invalid_argument("--random-range-ratio must be in [0, 1), got " + std::to_string(o.range_ratio));
  if (o.input_len < 1 || o.output_len < 1 || o.num_prompts < 1)
    throw std::invalid_argument("input length, output length and the number of prompts must be at least 1");
  std::vector<int32_t> pool; // the ids prompts are made of
  for (int64_t id = o.first_token_id; id < o.vocab_size; ++id)
    if (std::find(o.excluded_ids.begin(), o.excluded_ids.end(), id) == o.excluded_ids.end())
      pool.push_back(int32_t(id));
  if (pool.empty())
    throw std::invalid_argument("no token ids to draw prompts from (vocabulary size " + std::to_string(o.vocab_size) + ")");

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::uniform_int_distribution<int32_t> input_len(std::max(1, scaled(o.input_len, o.range_ratio, false)),
                                                   std::max(1, scaled(o.input_len, o.range_ratio, true)));
  std::uniform_int_distribution<int32_t> output_len(std::max(1, scaled(o.output_len, o.range_ratio, false)),
                                                    std::max(1, scaled(o.output_len, o.range_ratio, true)));
  std::vector<int32_t> prefix(size_t(std::max(0, o.prefix_len)));
  for (int32_t& t : prefix)
    t = pool[pick(rng)];
  std::vector<bench_request> out(size_t(o.num_prompts));
  for (bench_request& r : out) {
    const int32_t n = input_len(rng);
    r.prompt_token_ids = prefix;
    r.prompt_token_ids.reserve(prefix.size() + size_t(n));
    for (int32_t i = 0; i < n; ++i)
      r.prompt_token_ids.push_back(pool[pick(rng)]);
    r.output_len = output_len(rng);
  }
  return out;
}

std::vector<double> arrival_times(size_t count, double request_rate, double burstiness, uint64_t seed) {
  std::vector<double> t(count, 0.0);
  if (!std::isfinite(request_rate))
    return t;
  if (request_rate <= 0 || burstiness <= 0)
    throw std::invalid_argument("--request-rate and --burstiness must be positive");
  std::mt19937_64 rng(seed);
  // Gamma with shape k and scale 1 / (rate * k) has mean 1 / rate; k = 1 is exponential.
  std::gamma_distribution<double> gap(burstiness, 1.0 / (request_rate * burstiness));
  double now = 0;
  for (size_t i = 0; i < count; ++i) {
    t[i] = now;
    now += gap(rng);
  }
  return t;
}

} // namespace actorserve::gateway::bench
