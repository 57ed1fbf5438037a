// The sampler's rules (model/sampling.hpp), each checked so that a wrong rule fails.
#include "model/sampling.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <vector>

using namespace actorserve;

namespace {

sequence_sampling_state state_with(sampling_params p) {
  sequence_sampling_state s;
  s.params = p;
  return s;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs)
    l.push_back(float(std::log(p)));
  return l;
}

int32_t sample(std::vector<float> logits, const sequence_sampling_state& s) {
  return sample_token(logits.data(), int32_t(logits.size()), s).token;
}

// Tokens seen over many seeds.
std::set<int32_t> support(const std::vector<float>& logits, sampling_params p, int n = 2000) {
  std::set<int32_t> seen;
  for (int i = 0; i < n; ++i) {
    p.seed = uint64_t(i);
    seen.insert(sample(logits, state_with(p)));
  }
  return seen;
}

} // namespace

TEST_CASE("sampling_uniform is a pure function of (seed, k), uniform in 0 <= u < 1") {
  CHECK(sampling_uniform(7, 3) == sampling_uniform(7, 3));
  CHECK(sampling_uniform(7, 3) != sampling_uniform(7, 4));
  CHECK(sampling_uniform(7, 3) != sampling_uniform(8, 3));
  // Uniform over k: mean and the ten deciles of 100k draws.
  const int n = 100000;
  std::vector<int> deciles(10);
  double sum = 0;
  for (int k = 0; k < n; ++k) {
    double u = sampling_uniform(42, uint64_t(k));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
    ++deciles[size_t(u * 10)];
  }
  CHECK(sum / n == Approx(0.5).margin(0.005));
  for (int d : deciles)
    CHECK(std::abs(d - n / 10) < 500); // ~5 standard deviations
}

TEST_CASE("greedy takes the argmax, lowest id on ties") {
  sampling_params p;
  p.temperature = 0.0f;
  CHECK(sample({0.1f, 3.0f, -1.0f, 2.9f}, state_with(p)) == 1);
  CHECK(sample({1.0f, 5.0f, 5.0f, 5.0f}, state_with(p)) == 1);
  // A temperature too small to divide by is greedy too.
  p.temperature = 1e-7f;
  CHECK(sample({1.0f, 5.0f, 5.0f, 5.0f}, state_with(p)) == 1);
}

TEST_CASE("top-k 1 is greedy whatever the seed") {
  sampling_params p;
  p.top_k = 1;
  const std::vector<float> logits{0.5f, 0.2f, 0.45f, -3.0f, 0.49f};
  CHECK(support(logits, p, 500) == std::set<int32_t>{0});
  p.top_k = 2;
  CHECK(support(logits, p, 500) == std::set<int32_t>{0, 4});
}

TEST_CASE("top-p keeps the smallest best-first prefix reaching p") {
  const auto logits = logits_of({0.15, 0.5, 0.05, 0.3}); // best first: 1, 3, 0, 2
  sampling_params p;
  p.top_p = 0.75f; // 0.5 < 0.75 <= 0.8
  CHECK(support(logits, p) == std::set<int32_t>{1, 3});
  p.top_p = 0.81f;
  CHECK(support(logits, p) == std::set<int32_t>{0, 1, 3});
  p.top_p = 0.4f; // the best token alone already reaches it
  CHECK(support(logits, p) == std::set<int32_t>{1});
  p.top_p = 1.0f;
  CHECK(support(logits, p) == std::set<int32_t>{0, 1, 2, 3});
}

TEST_CASE("min-p drops tokens below min_p times the best probability") {
  const auto logits = logits_of({0.15, 0.5, 0.05, 0.3});
  sampling_params p;
  p.min_p = 0.35f; // threshold 0.175
  CHECK(support(logits, p) == std::set<int32_t>{1, 3});
  p.min_p = 0.25f; // threshold 0.125
  CHECK(support(logits, p) == std::set<int32_t>{0, 1, 3});
  // min-p after top-k: the best of the survivors still sets the threshold.
  p.min_p = 0.05f;
  p.top_k = 3;
  CHECK(support(logits, p) == std::set<int32_t>{0, 1, 3});
}

TEST_CASE("samples follow softmax(logits / temperature)") {
  const std::vector<float> logits{1.0f, 0.0f, 2.0f, -1.0f};
  for (float temperature : {1.0f, 0.5f}) {
    sampling_params p;
    p.temperature = temperature;
    p.seed = 99;
    sequence_sampling_state s = state_with(p);
    const int n = 40000;
    std::vector<int> counts(4);
    for (int i = 0; i < n; ++i) {
      // k = output_token_ids.size() changes the uniform at every draw.
      ++counts[size_t(sample(logits, s))];
      s.output_token_ids.push_back(0);
    }
    double z = 0;
    for (float l : logits)
      z += std::exp(l / temperature);
    for (size_t t = 0; t < 4; ++t)
      CHECK(double(counts[t]) / n == Approx(std::exp(logits[t] / temperature) / z).margin(0.01));
  }
}

TEST_CASE("same seed and k give the same token, other seeds differ") {
  const auto logits = logits_of({0.25, 0.25, 0.25, 0.25});
  sampling_params p;
  p.seed = 1234;
  std::vector<int32_t> a, b, c;
  sequence_sampling_state sa = state_with(p), sb = state_with(p);
  p.seed = 4321;
  sequence_sampling_state sc = state_with(p);
  for (int i = 0; i < 64; ++i) {
    a.push_back(sample(logits, sa));
    b.push_back(sample(logits, sb));
    c.push_back(sample(logits, sc));
    sa.output_token_ids.push_back(a.back());
    sb.output_token_ids.push_back(b.back());
    sc.output_token_ids.push_back(c.back());
  }
  CHECK(a == b);
  CHECK(a != c);
  CHECK(std::set<int32_t>(a.begin(), a.end()).size() == 4);
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits, once per id") {
  sampling_params p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.25f;
  sequence_sampling_state s = state_with(p);
  s.prompt_token_ids = {0, 0, 2}; // 0 twice: penalized once
  s.output_token_ids = {2};
  std::vector<float> logits{2.0f, 1.9f, -1.0f, -1.1f};
  const sampled_token t = sample_token(logits.data(), 4, s);
  CHECK(logits[0] == 2.0f / 1.25f);
  CHECK(logits[1] == 1.9f);
  CHECK(logits[2] == -1.0f * 1.25f);
  CHECK(t.token == 1); // the penalty moved the argmax off token 0
  std::vector<float> negative{-1.0f, -1.05f};
  s.prompt_token_ids = {0};
  s.output_token_ids = {};
  CHECK(sample_token(negative.data(), 2, s).token == 1);
}

TEST_CASE("presence and frequency penalties count output tokens only") {
  sampling_params p;
  p.temperature = 0.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  sequence_sampling_state s = state_with(p);
  s.prompt_token_ids = {1}; // the prompt does not count
  s.output_token_ids = {0, 0, 0, 2};
  std::vector<float> logits{3.0f, 1.9f, 2.7f, 0.0f};
  CHECK(sample_token(logits.data(), 4, s).token == 2); // 1.75, 1.9, 1.95, 0
  CHECK(logits[0] == Approx(3.0f - 0.5f - 3 * 0.25f));
  CHECK(logits[1] == 1.9f);
  CHECK(logits[2] == Approx(2.7f - 0.5f - 0.25f));
  CHECK(logits[3] == 0.0f);
}

TEST_CASE("logprobs are of the raw logits, top logprobs best first") {
  sampling_params p;
  p.temperature = 0.7f;
  p.repetition_penalty = 2.0f;
  p.logprobs = 2;
  p.seed = 5;
  sequence_sampling_state s = state_with(p);
  s.prompt_token_ids = {2};
  const std::vector<float> raw{0.5f, -0.25f, 1.5f, 1.5f};
  std::vector<float> logits = raw;
  const sampled_token t = sample_token(logits.data(), 4, s);
  double z = 0;
  for (float l : raw)
    z += std::exp(double(l));
  CHECK(t.logprob == Approx(double(raw[size_t(t.token)]) - std::log(z)).margin(1e-6));
  REQUIRE(t.top_logprobs.size() == 2);
  CHECK(t.top_logprobs[0].first == 2); // tie between 2 and 3: lower id first
  CHECK(t.top_logprobs[1].first == 3);
  CHECK(t.top_logprobs[0].second == Approx(1.5 - std::log(z)).margin(1e-6));
  p.logprobs = 0;
  s.params = p;
  logits = raw;
  CHECK(sample_token(logits.data(), 4, s).top_logprobs.empty());
}
