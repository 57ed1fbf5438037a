// The scheduler policy with the kv manager and the fake model: budgets, chunked prefill, prefix
// hits, preemption (recompute and swap) with identical output, no starvation of decodes,
// n > 1, executor failures, cancellation.
#include "sim.hpp"

using namespace actorserve;
using namespace actorserve::testing;

namespace {

fake_backend_options backend_of(int32_t num_blocks, int32_t num_host_blocks = 0) {
  fake_backend_options o;
  o.num_blocks = num_blocks;
  o.num_host_blocks = num_host_blocks;
  o.block_size = 4;
  o.eos_token_ids = {1};
  o.eos_logit_bias = -100.0f; // no early EOS unless a test wants it
  return o;
}

scheduler_config config_of(int32_t budget, int32_t max_seqs) {
  scheduler_config c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  return c;
}

// A mix of requests: greedy and seeded sampling, varied prompt and output lengths.
std::vector<generate_request> workload(int count) {
  std::vector<generate_request> out;
  for (int i = 0; i < count; ++i)
    out.push_back(request_of(uint64_t(i + 1), prompt_of(5 + (i * 11) % 37, i), 6 + (i * 5) % 17,
                             i % 2 ? 0.8f : 0.0f, uint64_t(1000 + i)));
  return out;
}

std::map<uint64_t, std::vector<int32_t>> run_alone(const std::vector<generate_request>& reqs) {
  std::map<uint64_t, std::vector<int32_t>> out;
  for (const auto& r : reqs) {
    sim s(config_of(64, 8), backend_of(256));
    s.add(r);
    s.run();
    out[r.id] = s.tokens(r.id);
  }
  return out;
}

} // namespace

TEST_CASE("token budget and sequence cap hold every step", "[scheduler]") {
  auto reqs = workload(40);
  sim s(config_of(24, 5), backend_of(64));
  for (const auto& r : reqs)
    s.add(r);
  s.run(); // sim::step REQUIREs both limits on every plan
  for (const auto& p : s.plans) {
    CHECK(p.seqs.size() <= 5);
  }
  for (const auto& r : reqs) {
    CHECK(s.requests[r.id].choices[0].finish == finish_reason::length);
    CHECK(int32_t(s.tokens(r.id).size()) == r.max_tokens);
  }
  CHECK(s.errors.empty());
  CHECK(s.kv.num_sequences() == 0);
  CHECK(s.kv.pool().num_free_blocks() == 64);
}

TEST_CASE("batched output equals each request alone, greedy and seeded", "[scheduler]") {
  auto reqs = workload(24);
  auto alone = run_alone(reqs);
  sim s(config_of(32, 16), backend_of(512));
  for (const auto& r : reqs)
    s.add(r);
  s.run();
  for (const auto& r : reqs)
    CHECK(s.tokens(r.id) == alone[r.id]);
  CHECK(s.errors.empty());
}

TEST_CASE("chunked prefill covers the prompt exactly once", "[scheduler]") {
  sim s(config_of(32, 4), backend_of(64));
  s.add(request_of(1, prompt_of(100), 3));
  std::vector<int32_t> chunks;
  while (s.policy.has_work()) {
    auto plan = s.step();
    if (!plan.seqs.empty())
      chunks.push_back(plan.seqs[0].num_new);
  }
  // 100 prompt tokens in chunks of 32, 32, 32, 4 (the last one samples), then two decodes.
  CHECK(chunks == std::vector<int32_t>{32, 32, 32, 4, 1, 1});
  CHECK(s.plans[0].seqs[0].needs_logits == false);
  CHECK(s.plans[3].seqs[0].needs_logits == true);
  CHECK(s.tokens(1).size() == 3);
}

TEST_CASE("prefix cache hits are skipped and counted", "[scheduler]") {
  scheduler_config c = config_of(64, 4);
  sim s(c, backend_of(64));
  auto prompt = prompt_of(22, 3);
  s.add(request_of(1, prompt, 4));
  s.run();
  auto first = s.tokens(1);
  auto prompt2 = prompt;
  prompt2.push_back(9);
  s.add(request_of(2, prompt2, 4));
  auto plan = s.step();
  // 22 prompt tokens + 4 outputs were cached in 4-token blocks; prompt2 shares 22 tokens, so
  // five whole blocks (20 tokens) are found and 3 tokens remain to compute.
  REQUIRE(plan.seqs.size() == 1);
  CHECK(plan.seqs[0].num_computed == 20);
  CHECK(plan.seqs[0].num_new == 3);
  s.run();
  CHECK(s.requests[2].num_cached == 20);
  auto reply = s.kv.process({});
  CHECK(reply.prefix_cache_queries == 22 + 23);
  CHECK(reply.prefix_cache_hits == 20);

  // The same prompt again gives the same greedy tokens from the cache.
  s.add(request_of(3, prompt, 4));
  s.run();
  CHECK(s.tokens(3) == first);
  CHECK(s.requests[3].num_cached == 20);
}

TEST_CASE("preemption by recompute resumes with identical output", "[scheduler]") {
  auto reqs = workload(16);
  auto alone = run_alone(reqs);
  // 20 blocks of 4 tokens for 16 requests of up to ~60 tokens: constant preemption.
  sim s(config_of(32, 16), backend_of(20));
  for (const auto& r : reqs)
    s.add(r);
  s.run();
  CHECK(s.policy.num_preemptions() > 0);
  for (const auto& r : reqs)
    CHECK(s.tokens(r.id) == alone[r.id]);
  CHECK(s.errors.empty());
}

TEST_CASE("preemption by swap round-trips block contents and resumes identically", "[scheduler]") {
  auto reqs = workload(16);
  auto alone = run_alone(reqs);
  scheduler_config c = config_of(32, 16);
  c.preemption = preemption_mode::swap;
  c.enable_prefix_caching = false; // swapped-in blocks then hold the only copy of the context
  sim s(c, backend_of(20, 64));
  for (const auto& r : reqs)
    s.add(r);
  bool swapped = false;
  while (s.policy.has_work()) {
    auto plan = s.step();
    swapped = swapped || !plan.swap_in.empty();
  }
  CHECK(swapped);
  CHECK(s.policy.num_preemptions() > 0);
  // The fake model reads every position back from the cache: a lost swap would change tokens
  // or fail the step.
  for (const auto& r : reqs)
    CHECK(s.tokens(r.id) == alone[r.id]);
  CHECK(s.errors.empty());
}

TEST_CASE("a long prompt does not stall running decodes", "[scheduler]") {
  sim s(config_of(16, 8), backend_of(512));
  for (uint64_t id = 1; id <= 4; ++id)
    s.add(request_of(id, prompt_of(3, int32_t(id)), 50));
  for (int i = 0; i < 3; ++i)
    s.step(); // all four decoding
  s.add(request_of(9, prompt_of(400, 9), 2));
  int prefill_steps = 0;
  while (s.policy.find_sequence(5) && s.policy.find_sequence(5)->num_computed < 400 - 1) {
    auto plan = s.step();
    int32_t decodes = 0;
    for (const auto& q : plan.seqs)
      decodes += q.seq_id <= 4 ? 1 : 0;
    CHECK(decodes == 4); // every decode gets its token in every step of the long prefill
    ++prefill_steps;
  }
  CHECK(prefill_steps > 20);
  s.run();
  CHECK(s.tokens(9).size() == 2);
}

TEST_CASE("at most max_num_partial_prefills prompts are chunked at once", "[scheduler]") {
  scheduler_config c = config_of(16, 8);
  c.max_num_partial_prefills = 1;
  sim s(c, backend_of(512));
  s.add(request_of(1, prompt_of(100, 1), 2));
  s.add(request_of(2, prompt_of(100, 2), 2));
  while (s.policy.has_work()) {
    auto plan = s.step();
    int partial = 0;
    for (const auto& q : plan.seqs)
      partial += q.needs_logits ? 0 : 1;
    CHECK(partial <= 1);
  }
}

TEST_CASE("stop conditions: EOS, stop token ids, ignore_eos, min_tokens, max_model_len", "[scheduler]") {
  fake_backend_options fo = backend_of(256);
  fo.eos_logit_bias = 0.0f;
  fo.vocab_size = 8; // EOS (1) is sampled often
  auto run_one = [&](generate_request r, int32_t max_model_len = 4096) {
    scheduler_config c = config_of(64, 4);
    c.max_model_len = max_model_len;
    sim s(c, fo);
    s.add(r);
    s.run();
    return s.requests[r.id].choices[0];
  };
  generate_request base = request_of(1, prompt_of(4, 1, 8), 200, 1.0f, 5);
  auto plain = run_one(base);
  REQUIRE(plain.finish == finish_reason::stop);
  CHECK(plain.tokens.back() == 1);
  CHECK(std::count(plain.tokens.begin(), plain.tokens.end(), 1) == 1);

  auto ignore = base;
  ignore.ignore_eos = true;
  auto ig = run_one(ignore);
  CHECK(ig.finish == finish_reason::length);
  CHECK(ig.tokens.size() == 200);
  // Sampling is deterministic: up to the EOS both runs agree.
  CHECK(std::equal(plain.tokens.begin(), plain.tokens.end(), ig.tokens.begin()));

  auto stop_ids = ignore;
  stop_ids.stop_token_ids = {ig.tokens[3]};
  auto st = run_one(stop_ids);
  CHECK(st.finish == finish_reason::stop);
  auto first = std::find(ig.tokens.begin(), ig.tokens.end(), ig.tokens[3]);
  CHECK(st.tokens == std::vector<int32_t>(ig.tokens.begin(), first + 1));

  auto min_tokens = base;
  min_tokens.min_tokens = int32_t(plain.tokens.size()) + 2;
  auto mt = run_one(min_tokens);
  CHECK(mt.tokens.size() >= plain.tokens.size() + 2);

  auto capped = ignore;
  auto cl = run_one(capped, 4 + 7);
  CHECK(cl.finish == finish_reason::length);
  CHECK(cl.tokens.size() == 7);
}

TEST_CASE("n > 1 shares the prompt blocks and each choice equals its own seed alone", "[scheduler]") {
  auto prompt = prompt_of(10, 4); // 10 tokens: the shared part ends inside a block
  sim s(config_of(64, 8), backend_of(64));
  s.add(request_of(1, prompt, 8, 0.9f, 77, 3));
  bool copied = false;
  bool forked_shares = false;
  while (s.policy.has_work()) {
    auto plan = s.step();
    copied = copied || !plan.copies.empty();
    if (s.policy.find_sequence(2) && s.policy.find_sequence(3)) {
      const auto& t1 = s.kv.block_table(1);
      const auto& t3 = s.kv.block_table(3);
      if (!t1.empty() && !t3.empty() && t1[0] == t3[0])
        forked_shares = true;
    }
  }
  CHECK(copied);
  CHECK(forked_shares);
  REQUIRE(s.requests[1].choices.size() == 3);
  for (int32_t i = 0; i < 3; ++i) {
    sim one(config_of(64, 8), backend_of(64));
    one.add(request_of(1, prompt, 8, 0.9f, 77 + uint64_t(i), 1));
    one.run();
    CHECK(s.tokens(1, i) == one.tokens(1));
    CHECK(s.requests[1].choices[i].finish == finish_reason::length);
  }
  CHECK(s.tokens(1, 0) != s.tokens(1, 1));
}

TEST_CASE("n > 1 under preemption still gives identical choices", "[scheduler]") {
  std::vector<generate_request> reqs;
  for (int i = 0; i < 6; ++i)
    reqs.push_back(request_of(uint64_t(i + 1), prompt_of(9 + i, i), 10, 0.7f, uint64_t(i), 2));
  sim big(config_of(32, 16), backend_of(256));
  sim small(config_of(32, 16), backend_of(16));
  for (const auto& r : reqs) {
    big.add(r);
    small.add(r);
  }
  big.run();
  small.run();
  CHECK(small.policy.num_preemptions() > 0);
  for (const auto& r : reqs)
    for (int32_t c = 0; c < 2; ++c)
      CHECK(small.tokens(r.id, c) == big.tokens(r.id, c));
}

TEST_CASE("priority policy admits lower values first and preempts the lowest priority", "[scheduler]") {
  scheduler_config c = config_of(64, 1);
  c.policy = scheduling_policy::priority;
  sim s(c, backend_of(64));
  auto low = request_of(1, prompt_of(4, 1), 3);
  low.priority = 5;
  auto high = request_of(2, prompt_of(4, 2), 3);
  high.priority = -1;
  s.add(low);
  s.add(high);
  auto plan = s.step();
  REQUIRE(plan.seqs.size() == 1);
  CHECK(s.policy.find_sequence(plan.seqs[0].seq_id)->request_id == 2);
  s.run();
}

TEST_CASE("an executor failure fails the guilty request and retries the others", "[scheduler]") {
  auto reqs = workload(6);
  auto alone = run_alone(reqs);
  fake_backend_options fo = backend_of(256);
  fo.fail_on_token = 1000; // outside the vocabulary: only the poisoned prompt holds it
  sim s(config_of(256, 16), fo);
  for (const auto& r : reqs)
    s.add(r);
  auto poison = request_of(99, {2, 3, 1000, 4}, 5);
  s.add(poison);
  s.run();
  CHECK(s.requests[99].error == engine_errc::executor_failed);
  CHECK(s.requests[99].error_message.find("injected failure") != std::string::npos);
  CHECK(s.requests[99].choices[0].finish == finish_reason::abort);
  for (const auto& r : reqs) {
    CHECK(s.requests[r.id].error == engine_errc::none);
    CHECK(s.tokens(r.id) == alone[r.id]);
  }
  CHECK(s.policy.num_step_failures() >= 1);
  CHECK(s.kv.num_sequences() == 0);
}

TEST_CASE("cancelling frees the request's blocks in the next iteration", "[scheduler]") {
  sim s(config_of(64, 8), backend_of(64));
  s.add(request_of(1, prompt_of(30, 1), 100));
  s.add(request_of(2, prompt_of(30, 2), 100));
  s.step();
  s.step();
  int32_t used = s.kv.pool().num_used_blocks();
  REQUIRE(s.kv.block_table(1).size() >= 8);
  s.policy.abort_request(1, engine_errc::cancelled, "cancelled");
  s.step();
  CHECK(s.kv.block_table(1).empty());
  CHECK(s.kv.pool().num_used_blocks() < used);
  CHECK(s.requests[1].choices[0].finish == finish_reason::abort);
  CHECK(s.requests[1].error == engine_errc::cancelled);
  CHECK(s.exec.num_sequences() == 1);
  s.run();
  CHECK(s.tokens(2).size() == 100);
}

TEST_CASE("a sequence larger than the whole pool is aborted, not looped on", "[scheduler]") {
  sim s(config_of(64, 8), backend_of(4)); // 16 tokens of KV in all
  s.add(request_of(1, prompt_of(10, 1), 50));
  s.run(200);
  CHECK(s.requests[1].error == engine_errc::invalid_request);
  CHECK(s.requests[1].choices[0].finish == finish_reason::abort);
}
