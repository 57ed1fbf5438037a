#pragma once
// The engine without actors: scheduler policy, kv manager and executor core driven in one
// loop over the fake backend, exactly as the actors drive them (one kv round trip and one
// executor round trip per iteration). Checks the invariants after every iteration.

#include "actors/executor_core.hpp"
#include "actors/fake_backend.hpp"
#include "actors/kv_manager.hpp"
#include "actors/scheduler_policy.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <numeric>

namespace actorserve::testing {

inline std::vector<int32_t> prompt_of(int32_t n, int32_t salt = 0, int32_t vocab = 64) {
  std::vector<int32_t> v(n);
  for (int32_t i = 0; i < n; ++i)
    v[i] = 2 + (i * 7 + salt * 13 + i * salt) % (vocab - 2); // never 0 or 1 (EOS)
  return v;
}

inline generate_request request_of(uint64_t id, std::vector<int32_t> prompt, int32_t max_tokens,
                                   float temperature = 0.0f, uint64_t seed = 0, int32_t n = 1) {
  generate_request r;
  r.id = id;
  r.prompt_token_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.has_seed = true;
  r.n = n;
  return r;
}

struct sim_choice {
  std::vector<int32_t> tokens;
  finish_reason finish = finish_reason::none;
};

struct sim_request {
  std::map<int32_t, sim_choice> choices;
  engine_errc error = engine_errc::none;
  std::string error_message;
  int32_t num_cached = 0;
  int32_t num_preemptions = 0;
};

class sim {
public:
  sim(scheduler_config sc, fake_backend_options fo)
      : policy(with_backend(sc, fo)), kv(fo.num_blocks, fo.block_size, fo.num_host_blocks, sc.enable_prefix_caching),
        exec(make_fake_backend(fo)) {}

  static scheduler_config with_backend(scheduler_config sc, const fake_backend_options& fo) {
    sc.block_size = fo.block_size;
    sc.eos_token_ids.assign(fo.eos_token_ids.begin(), fo.eos_token_ids.end());
    sc.max_model_len = std::min(sc.max_model_len, fo.max_position_embeddings);
    return sc;
  }

  void add(const generate_request& r) { policy.add_request(r); }

  /// One iteration; returns the plan that ran.
  step_plan step() {
    capacity_request cap = policy.propose();
    capacity_reply reply = kv.process(cap);
    step_plan plan = policy.build(reply);
    int32_t num_tokens = 0;
    for (const auto& s : plan.seqs)
      num_tokens += s.num_new;
    REQUIRE(num_tokens <= policy.config().max_num_batched_tokens);
    REQUIRE(int32_t(plan.seqs.size()) <= policy.config().max_num_seqs);
    step_result result = exec.run(plan);
    if (!result.error.empty())
      errors.push_back(result.error);
    policy.apply(result);
    for (auto& e : policy.take_events())
      record(e);
    kv.check_invariants();
    max_preemptions = std::max(max_preemptions, policy.num_preemptions());
    plans.push_back(plan);
    return plan;
  }

  void run(int max_steps = 100000) {
    int steps = 0;
    while (policy.has_work()) {
      step();
      REQUIRE(++steps < max_steps);
    }
  }

  void record(const token_event& e) {
    sim_request& r = requests[e.request_id];
    if (e.error != engine_errc::none) {
      r.error = e.error;
      r.error_message = e.error_message;
    }
    r.num_cached = e.num_cached_prompt_tokens;
    r.num_preemptions = e.num_preemptions;
    for (const auto& c : e.choices) {
      sim_choice& sc = r.choices[c.index];
      for (const auto& t : c.tokens)
        sc.tokens.push_back(t.token);
      if (c.finish != finish_reason::none)
        sc.finish = c.finish;
    }
  }

  const std::vector<int32_t>& tokens(uint64_t request, int32_t choice = 0) { return requests[request].choices[choice].tokens; }

  scheduler_policy policy;
  kv_manager kv;
  executor_core exec;
  std::map<uint64_t, sim_request> requests;
  std::vector<step_plan> plans;
  std::vector<std::string> errors;
  int64_t max_preemptions = 0;
};

} // namespace actorserve::testing
