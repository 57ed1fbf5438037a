#include "actors/engine_shared.hpp"

#include <random>

namespace actorserve {

std::string validate_request(generate_request& r, const request_limits& limits) {
  const int32_t prompt_len = int32_t(r.prompt_token_ids.size());
  if (prompt_len == 0)
    return "the prompt is empty";
  for (int32_t t : r.prompt_token_ids)
    if (t < 0 || (limits.vocab_size > 0 && t >= limits.vocab_size))
      return "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " +
             std::to_string(limits.vocab_size) + ")";
  if (prompt_len >= limits.max_model_len)
    return "the prompt has " + std::to_string(prompt_len) + " tokens; the model's maximum context length is " +
           std::to_string(limits.max_model_len) + " (prompt plus at least one generated token)";
  const int32_t resumed = int32_t(r.resume_output_token_ids.size());
  if (resumed > 0) {
    if (r.n != 1)
      return "resume_output_token_ids needs n == 1 (resume each choice on its own, with seed + choice index)";
    for (int32_t t : r.resume_output_token_ids)
      if (t < 0 || (limits.vocab_size > 0 && t >= limits.vocab_size))
        return "resumed output token id " + std::to_string(t) + " is outside the vocabulary";
    if (prompt_len + resumed >= limits.max_model_len)
      return "the prompt and the resumed output have " + std::to_string(prompt_len + resumed) +
             " tokens; the model's maximum context length is " + std::to_string(limits.max_model_len);
  }
  const int32_t prompt_blocks = (prompt_len + resumed + limits.block_size) / limits.block_size; // + the next output
  if (limits.num_blocks > 0 && prompt_blocks > limits.num_blocks - limits.watermark_blocks)
    return "the prompt needs " + std::to_string(prompt_blocks) + " KV cache blocks; the cache has " +
           std::to_string(limits.num_blocks - limits.watermark_blocks);
  if (r.n < 1 || (limits.max_num_seqs > 0 && r.n > limits.max_num_seqs))
    return "n must be between 1 and max_num_seqs (" + std::to_string(limits.max_num_seqs) + "), got " +
           std::to_string(r.n);
  if (r.max_tokens < 1)
    return "max_tokens must be at least 1, got " + std::to_string(r.max_tokens);
  r.max_tokens = std::min(r.max_tokens, limits.max_model_len - prompt_len);
  if (resumed >= r.max_tokens)
    return "nothing left to generate: " + std::to_string(resumed) + " resumed output tokens reach max_tokens (" +
           std::to_string(r.max_tokens) + ")";
  if (r.min_tokens < 0 || r.min_tokens > r.max_tokens)
    return "min_tokens must be between 0 and max_tokens";
  const sampling_params& p = r.sampling;
  if (!(p.temperature >= 0.0f))
    return "temperature must be >= 0";
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return "top_p must be in (0, 1]";
  if (p.top_k < -1)
    return "top_k must be -1, 0 (disabled) or positive";
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return "min_p must be in [0, 1]";
  if (!(p.repetition_penalty > 0.0f))
    return "repetition_penalty must be > 0";
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f) ||
      !(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    return "presence_penalty and frequency_penalty must be in [-2, 2]";
  if (p.logprobs < -1 || p.logprobs > 20)
    return "logprobs must be between 0 and 20";
  if (!r.stop.empty() && (!limits.has_detokenizer || !r.detokenize))
    return "stop strings need detokenized output (the engine has no tokenizer, or detokenize is off)";
  for (int32_t t : r.stop_token_ids)
    if (t < 0 || (limits.vocab_size > 0 && t >= limits.vocab_size))
      return "stop token id " + std::to_string(t) + " is outside the vocabulary";
  return {};
}

engine_shared::engine_shared() : seed_counter(std::random_device{}() | (uint64_t(std::random_device{}()) << 32)) {}

submit_result engine_shared::prepare(generate_request& r) {
  submit_result out;
  if (draining.load()) {
    out.error = engine_errc::shutting_down;
    out.message = "the engine is shutting down";
    return out;
  }
  if (std::string problem = validate_request(r, limits); !problem.empty()) {
    out.error = engine_errc::invalid_request;
    out.message = std::move(problem);
    return out;
  }
  if (pending_admits.load() + scheduler_unadmitted.load() >= config.max_waiting_requests) {
    out.error = engine_errc::overloaded;
    out.message = "the engine is overloaded: " + std::to_string(config.max_waiting_requests) +
                  " requests are already waiting; retry later";
    return out;
  }
  if (r.id == 0)
    r.id = next_request_id.fetch_add(1);
  if (!r.has_seed) {
    // splitmix64 of a random start: distinct seeds without a lock.
    uint64_t x = seed_counter.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    r.sampling.seed = x ^ (x >> 31);
    r.has_seed = true;
  }
  if (r.arrival_time == engine_clock::time_point{})
    r.arrival_time = engine_clock::now();
  {
    std::lock_guard<std::mutex> lock(live_mutex);
    ++live_requests;
  }
  pending_admits.fetch_add(1);
  out.request_id = r.id;
  return out;
}

output_sink engine_shared::track(output_sink sink, const std::shared_ptr<engine_shared>& self) {
  std::weak_ptr<engine_shared> weak = self;
  return [sink = std::move(sink), weak](request_output&& o) {
    bool finished = o.finished;
    if (sink)
      sink(std::move(o));
    if (finished)
      if (auto shared = weak.lock())
        shared->request_finished();
  };
}

void engine_shared::request_finished() {
  std::lock_guard<std::mutex> lock(live_mutex);
  --live_requests;
  live_changed.notify_all();
}

engine_stats engine_shared::snapshot() const {
  std::lock_guard<std::mutex> lock(stats_mutex);
  engine_stats s = stats;
  s.draining = draining.load();
  return s;
}

} // namespace actorserve
