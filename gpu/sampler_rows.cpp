// Host side of the GPU sampler: one sampler_row per sequence, with the penalty id lists
// deduplicated here so the kernel applies each penalty once per id, as the CPU sampler does.
#include "gpu/sampler.hpp"

#include <algorithm>

namespace actorserve::gpu {

sampler_row make_sampler_row(const sequence_sampling_state& state, int32_t logits_row,
                             std::vector<int32_t>& penalty_ids, std::vector<int32_t>& penalty_counts) {
  const sampling_params& p = state.params;
  sampler_row r;
  r.logits_row = logits_row;
  r.greedy = p.greedy() ? 1 : 0;
  r.temperature = p.temperature;
  r.top_p = p.top_p;
  r.min_p = p.min_p;
  r.top_k = p.top_k;
  r.repetition_penalty = p.repetition_penalty;
  r.presence_penalty = p.presence_penalty;
  r.frequency_penalty = p.frequency_penalty;
  r.uniform = sampling_uniform(p.seed, state.output_token_ids.size());
  if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f) {
    std::vector<int32_t> seen(state.prompt_token_ids);
    seen.insert(seen.end(), state.output_token_ids.begin(), state.output_token_ids.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    r.repetition_offset = int32_t(penalty_ids.size());
    r.repetition_count = int32_t(seen.size());
    penalty_ids.insert(penalty_ids.end(), seen.begin(), seen.end());
    penalty_counts.insert(penalty_counts.end(), seen.size(), 1);
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::vector<int32_t> outs(state.output_token_ids);
    std::sort(outs.begin(), outs.end());
    r.frequency_offset = int32_t(penalty_ids.size());
    for (size_t a = 0; a < outs.size();) {
      size_t b = a;
      while (b < outs.size() && outs[b] == outs[a])
        ++b;
      penalty_ids.push_back(outs[a]);
      penalty_counts.push_back(int32_t(b - a));
      a = b;
    }
    r.frequency_count = int32_t(penalty_ids.size()) - r.frequency_offset;
  }
  return r;
}

} // namespace actorserve::gpu
