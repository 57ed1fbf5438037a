#pragma once
// Helpers for the engine tests: run requests through an engine and collect their streams.

#include "actors/engine.hpp"
#include "actors/fake_backend.hpp"
#include "tests/actors/sim.hpp" // prompt_of, request_of

#include <catch2/catch.hpp>

#include <map>

namespace actorserve::testing {

struct collected {
  std::map<int32_t, std::vector<int32_t>> tokens; // per choice
  std::map<int32_t, std::string> text;
  std::map<int32_t, finish_reason> finish;
  std::map<int32_t, std::vector<token_logprob>> logprobs;
  engine_errc error = engine_errc::none;
  std::string error_message;
  usage_counts usage;
  request_metrics metrics;
  int num_events = 0;
  bool finished = false;
};

/// Applies one event to the collection for its request (checks nothing follows `finished`).
inline void collect(std::map<uint64_t, collected>& out, request_output&& o) {
  collected& c = out[o.request_id];
  REQUIRE_FALSE(c.finished);
  ++c.num_events;
  for (auto& d : o.choices) {
    auto& t = c.tokens[d.index];
    t.insert(t.end(), d.token_ids.begin(), d.token_ids.end());
    c.text[d.index] += d.text;
    auto& lp = c.logprobs[d.index];
    lp.insert(lp.end(), d.logprobs.begin(), d.logprobs.end());
    if (d.finish != finish_reason::none)
      c.finish[d.index] = d.finish;
  }
  if (o.error != engine_errc::none) {
    c.error = o.error;
    c.error_message = o.error_message;
  }
  c.usage = o.usage;
  if (o.finished) {
    c.finished = true;
    c.metrics = o.metrics;
  }
}

/// Submits every request at once and waits until all have finished.
inline std::map<uint64_t, collected> run_all(engine& e, const std::vector<generate_request>& reqs,
                                             std::chrono::seconds timeout = std::chrono::seconds(60)) {
  output_queue q;
  std::map<uint64_t, collected> out;
  for (const auto& r : reqs) {
    auto res = e.submit(r, q.sink());
    REQUIRE(res);
  }
  size_t finished = 0;
  auto until = std::chrono::steady_clock::now() + timeout;
  while (finished < reqs.size()) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    auto o = q.pop(std::chrono::milliseconds(200));
    if (!o)
      continue;
    bool fin = o->finished;
    collect(out, std::move(*o));
    finished += fin ? 1 : 0;
  }
  return out;
}

// Token id -> "<id>" text, for stop-string tests through the engine.
class id_detokenizer : public detokenizer {
public:
  std::string decode(std::span<const int32_t> ids, bool) const override {
    std::string s;
    for (int32_t id : ids)
      s += "<" + std::to_string(id) + ">";
    return s;
  }
};

inline engine_config small_config() {
  engine_config c;
  c.max_num_seqs = 16;
  c.max_num_batched_tokens = 32;
  return c;
}

inline fake_backend_options fake_options(int32_t num_blocks = 256) {
  fake_backend_options o;
  o.num_blocks = num_blocks;
  o.block_size = 4;
  o.eos_logit_bias = -100.0f;
  return o;
}

inline backend_factory fake_factory(fake_backend_options o) {
  return [o] { return make_fake_backend(o); };
}

} // namespace actorserve::testing
