#include "model/generate_loop.hpp"

#include "model/error.hpp"

#include <algorithm>
#include <chrono>

namespace actorserve {

generation_result generate_sequence(backend& b, const std::vector<int32_t>& prompt, const generation_options& o) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty())
    throw model_error("the prompt is empty");
  if (o.max_tokens < 1)
    throw model_error("max_tokens must be >= 1");
  if (o.chunk_size < 1)
    throw model_error("chunk_size must be >= 1");
  const kv_cache_shape kv = b.kv_shape();
  // The last sampled token is never fed back, so it needs no KV slot.
  const int64_t kv_tokens = int64_t(prompt.size()) + o.max_tokens - 1;
  if (kv_tokens > int64_t(kv.num_blocks) * kv.block_size)
    throw model_error("prompt (" + std::to_string(prompt.size()) + " tokens) + max_tokens (" +
                      std::to_string(o.max_tokens) + ") does not fit in the KV cache (" +
                      std::to_string(int64_t(kv.num_blocks) * kv.block_size) + " tokens)");
  const auto& eos = b.config().eos_token_ids;

  sequence_sampling_state state;
  state.params = o.sampling;
  state.prompt_token_ids = prompt;
  step_sequence seq;
  seq.seq_id = 0;
  for (int32_t i = 0; i < int32_t((kv_tokens + kv.block_size - 1) / kv.block_size); ++i)
    seq.block_table.push_back(i);

  generation_result result;
  std::vector<sampled_token> sampled;
  const std::vector<const sequence_sampling_state*> sampling{&state};
  auto start = clock::now();
  std::vector<int32_t> pending = prompt; // tokens not yet in the KV cache
  int32_t computed = 0;
  for (;;) {
    // Prefill in chunks; the last chunk (or the decode token) samples.
    size_t offset = 0;
    while (offset < pending.size()) {
      const int32_t n = int32_t(std::min<size_t>(size_t(o.chunk_size), pending.size() - offset));
      step_batch step;
      seq.num_computed_tokens = computed;
      seq.num_new_tokens = n;
      seq.needs_logits = offset + size_t(n) == pending.size();
      step.add(seq, pending.data() + offset);
      b.execute(step, seq.needs_logits ? sampling : std::vector<const sequence_sampling_state*>{}, sampled);
      if (result.token_ids.empty())
        ++result.prefill_steps;
      computed += n;
      offset += size_t(n);
    }
    const sampled_token& tok = sampled.at(0);
    if (result.token_ids.empty())
      result.prefill_seconds = std::chrono::duration<double>(clock::now() - start).count();
    result.token_ids.push_back(tok.token);
    result.samples.push_back(tok);
    state.output_token_ids.push_back(tok.token);
    if (!o.ignore_eos && std::find(eos.begin(), eos.end(), int64_t(tok.token)) != eos.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (int32_t(result.token_ids.size()) >= o.max_tokens) {
      result.finish_reason = "length";
      break;
    }
    pending.assign(1, tok.token);
  }
  result.decode_seconds =
      std::chrono::duration<double>(clock::now() - start).count() - result.prefill_seconds;
  return result;
}

} // namespace actorserve
