#include "model/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace actorserve {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Lowest id among the largest values: the tie rule of greedy decoding.
int32_t argmax(const float* v, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (v[i] > v[best])
      best = i;
  return best;
}

double log_sum_exp(const float* v, int32_t n) {
  float max_v = v[argmax(v, n)];
  double sum = 0.0;
  for (int32_t i = 0; i < n; ++i)
    sum += std::exp(double(v[i]) - double(max_v));
  return double(max_v) + std::log(sum);
}

// HF repetition penalty over prompt + output ids (each id once), then OpenAI presence and
// frequency penalties over output ids. The same order as vLLM.
void apply_penalties(float* logits, int32_t vocab_size, const sequence_sampling_state& state) {
  const sampling_params& p = state.params;
  auto in_vocab = [&](int32_t id) { return id >= 0 && id < vocab_size; };
  if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f) {
    std::vector<int32_t> seen;
    seen.reserve(state.prompt_token_ids.size() + state.output_token_ids.size());
    for (int32_t id : state.prompt_token_ids)
      if (in_vocab(id)) seen.push_back(id);
    for (int32_t id : state.output_token_ids)
      if (in_vocab(id)) seen.push_back(id);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t id : seen) {
      float& l = logits[id];
      l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::vector<int32_t> out;
    for (int32_t id : state.output_token_ids)
      if (in_vocab(id)) out.push_back(id);
    std::sort(out.begin(), out.end());
    for (size_t i = 0; i < out.size();) {
      size_t j = i;
      while (j < out.size() && out[j] == out[i]) ++j;
      logits[out[i]] -= p.frequency_penalty * float(j - i) + p.presence_penalty;
      i = j;
    }
  }
}

// Narrows `candidates` (token ids) by top-k, top-p and min-p, in that order, over the
// temperature-scaled `logits`. Keeps at least the best token.
void filter_candidates(const float* logits, const sampling_params& p, std::vector<int32_t>& candidates) {
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const int32_t n = int32_t(candidates.size());
  if (p.top_k > 0 && p.top_k < n) {
    // Ties with the k-th value stay in (like vLLM's threshold mask).
    std::nth_element(candidates.begin(), candidates.begin() + (p.top_k - 1), candidates.end(), better);
    const float threshold = logits[candidates[size_t(p.top_k - 1)]];
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [&](int32_t id) { return logits[id] < threshold; }),
                     candidates.end());
  }
  if (p.top_p < 1.0f || p.min_p > 0.0f) {
    std::sort(candidates.begin(), candidates.end(), better);
    const double max_l = logits[candidates.front()];
    std::vector<double> probs(candidates.size());
    double sum = 0.0;
    for (size_t i = 0; i < candidates.size(); ++i)
      sum += probs[i] = std::exp(double(logits[candidates[i]]) - max_l);
    size_t keep = candidates.size();
    if (p.top_p < 1.0f) {
      // The smallest prefix (best first) whose probability reaches top_p.
      double cumulative = 0.0;
      for (size_t i = 0; i < candidates.size(); ++i) {
        cumulative += probs[i] / sum;
        if (cumulative >= double(p.top_p)) {
          keep = i + 1;
          break;
        }
      }
    }
    if (p.min_p > 0.0f) {
      // Relative to the best token, so the renormalization after top-k/top-p changes nothing.
      const double threshold = double(p.min_p) * probs[0];
      size_t k = 1;
      while (k < keep && probs[k] >= threshold) ++k;
      keep = k;
    }
    candidates.resize(std::max<size_t>(keep, 1));
  }
}

} // namespace

double sampling_uniform(uint64_t seed, uint64_t k) {
  const uint64_t bits = splitmix64(splitmix64(seed) ^ splitmix64(k ^ 0x5851f42d4c957f2dull));
  return double(bits >> 11) * (1.0 / 9007199254740992.0); // 53 bits -> [0, 1)
}

sampled_token sample_token(float* logits, int32_t vocab_size, const sequence_sampling_state& state) {
  const sampling_params& p = state.params;
  sampled_token result;
  // Logprobs are of the raw logits, so keep what is needed before penalties touch them.
  const double raw_lse = log_sum_exp(logits, vocab_size);
  if (p.logprobs > 0) {
    const int32_t k = std::min(p.logprobs, vocab_size);
    std::vector<int32_t> ids(static_cast<size_t>(vocab_size));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int32_t i = 0; i < k; ++i)
      result.top_logprobs.emplace_back(ids[size_t(i)], float(double(logits[ids[size_t(i)]]) - raw_lse));
  }
  std::vector<float> raw(logits, logits + vocab_size);

  apply_penalties(logits, vocab_size, state);
  // A temperature this small would overflow exp(); it means greedy (vLLM uses the same cut).
  if (p.greedy() || p.temperature < 1e-5f) {
    result.token = argmax(logits, vocab_size);
  } else {
    const float inv_t = 1.0f / p.temperature;
    for (int32_t i = 0; i < vocab_size; ++i)
      logits[i] *= inv_t;
    std::vector<int32_t> candidates(static_cast<size_t>(vocab_size));
    std::iota(candidates.begin(), candidates.end(), 0);
    filter_candidates(logits, p, candidates);
    // Inverse CDF over the survivors in token-id order: simple to reproduce on the GPU.
    std::sort(candidates.begin(), candidates.end());
    float max_l = -std::numeric_limits<float>::infinity();
    for (int32_t id : candidates)
      max_l = std::max(max_l, logits[id]);
    double total = 0.0;
    for (int32_t id : candidates)
      total += std::exp(double(logits[id]) - double(max_l));
    const double target = sampling_uniform(p.seed, state.output_token_ids.size()) * total;
    double cumulative = 0.0;
    result.token = candidates.back();
    for (int32_t id : candidates) {
      cumulative += std::exp(double(logits[id]) - double(max_l));
      if (cumulative > target) {
        result.token = id;
        break;
      }
    }
  }
  result.logprob = float(double(raw[size_t(result.token)]) - raw_lse);
  return result;
}

} // namespace actorserve
