// KV export/import through the engine (CPU backend, demo model): a request resumed elsewhere
// with its exported K/V continues with exactly the tokens of an uninterrupted run, and the
// imported K/V is really what it decodes from.
#include "actors/engine.hpp"
#include "model/cpu_backend.hpp"
#include "model/error.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <future>

using namespace actorserve;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<engine> start_engine() {
  cpu_backend_options o;
  o.num_blocks = 256;
  o.num_threads = 1;
  engine_config c;
  c.max_num_seqs = 8;
  c.enable_prefix_caching = false; // cached prompt tokens then count imported ones only
  return engine::start(c, [o] { return make_cpu_backend(actorserve::testing::source_dir() / "models/demo", o); });
}

generate_request greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  generate_request r;
  r.prompt_token_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.detokenize = false;
  r.sampling.temperature = 0;
  return r;
}

struct run_result {
  std::vector<int32_t> tokens;
  request_output last;
};

run_result run(engine& e, generate_request r) {
  output_queue q;
  auto s = e.submit(std::move(r), q.sink());
  REQUIRE(s);
  run_result out;
  while (auto ev = q.pop(30s)) {
    for (const auto& c : ev->choices)
      out.tokens.insert(out.tokens.end(), c.token_ids.begin(), c.token_ids.end());
    if (ev->finished) {
      out.last = std::move(*ev);
      return out;
    }
  }
  FAIL("no final event");
  return out;
}

std::vector<int32_t> prompt_of(int32_t n) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < n; ++i)
    p.push_back(7 + (i * 37) % 3000);
  return p;
}

// Runs `prompt` until `at` tokens arrived, exports its KV, cancels it; returns the snapshot and
// the tokens received before the export answered.
std::pair<kv_snapshot, std::vector<int32_t>> export_midway(engine& e, const std::vector<int32_t>& prompt,
                                                          int32_t max_tokens, size_t at) {
  output_queue q;
  auto s = e.submit(greedy(prompt, max_tokens), q.sink());
  REQUIRE(s);
  std::vector<int32_t> received;
  while (received.size() < at) {
    auto ev = q.pop(30s);
    REQUIRE(ev);
    REQUIRE_FALSE(ev->finished);
    for (const auto& c : ev->choices)
      received.insert(received.end(), c.token_ids.begin(), c.token_ids.end());
  }
  std::promise<kv_snapshot> p;
  e.export_kv(s.request_id, [&](kv_snapshot&& snap) { p.set_value(std::move(snap)); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  kv_snapshot snap = f.get();
  e.cancel(s.request_id);
  return {std::move(snap), received};
}

} // namespace

TEST_CASE("engine: a request resumed with its exported KV continues with the uninterrupted tokens",
          "[kv_migration][engine]") {
  auto e = start_engine();
  REQUIRE(e->kv_layout());
  CHECK(e->kv_layout()->dtype == "f32");
  CHECK(e->kv_layout()->token_bytes() == 6 * 2 * 2 * 64 * 4);
  const auto prompt = prompt_of(45);
  const int32_t max_tokens = 40;
  const auto reference = run(*e, greedy(prompt, max_tokens)).tokens;
  REQUIRE(reference.size() == size_t(max_tokens));

  auto [snap, received] = export_midway(*e, prompt, max_tokens, 12);
  REQUIRE(snap.error.empty());
  // The snapshot covers the prompt and the tokens computed so far, in prompt order.
  REQUIRE(snap.token_ids.size() >= prompt.size() + received.size() - 1);
  CHECK(std::equal(prompt.begin(), prompt.end(), snap.token_ids.begin()));
  CHECK(snap.data.size() == snap.token_ids.size() * size_t(snap.layout.token_bytes()));

  // Resume from what the client has, as the cluster does.
  auto resumed = greedy(prompt, max_tokens - int32_t(received.size()));
  resumed.prompt_token_ids.insert(resumed.prompt_token_ids.end(), received.begin(), received.end());
  const int32_t resumed_len = int32_t(resumed.prompt_token_ids.size());
  auto kv = std::make_shared<kv_snapshot>(snap);
  resumed.kv_import = kv;
  auto out = run(*e, resumed);
  std::vector<int32_t> joined = received;
  joined.insert(joined.end(), out.tokens.begin(), out.tokens.end());
  CHECK(joined == reference);
  // Imported, not recomputed: all but the last resumed token came with the snapshot.
  const int32_t matched = std::min<int32_t>(int32_t(snap.token_ids.size()), resumed_len - 1);
  CHECK(out.last.metrics.num_cached_prompt_tokens == matched);

  SECTION("the imported K/V is what the sequence decodes from: zeroed K/V changes the tokens") {
    auto zeroed = std::make_shared<kv_snapshot>(snap);
    std::fill(zeroed->data.begin(), zeroed->data.end(), '\0');
    auto r = resumed;
    r.kv_import = zeroed;
    auto bad = run(*e, r);
    CHECK(bad.last.metrics.num_cached_prompt_tokens == matched);
    CHECK(bad.tokens != out.tokens);
  }
  SECTION("a payload of the wrong size is dropped at submit and the request recomputed: same tokens") {
    auto truncated = std::make_shared<kv_snapshot>(snap);
    truncated->data.resize(truncated->data.size() - 4);
    auto r = resumed;
    r.kv_import = truncated;
    auto again = run(*e, r);
    CHECK(again.last.error == engine_errc::none);
    CHECK(again.tokens == out.tokens);
    CHECK(again.last.metrics.num_cached_prompt_tokens == 0);
    CHECK(e->stats().num_executor_failures == 0);
  }
  SECTION("a snapshot of other tokens imports only the matching prefix") {
    auto other = std::make_shared<kv_snapshot>(snap);
    other->token_ids[20] += 1; // positions from 20 on belong to another sequence
    auto r = resumed;
    r.kv_import = other;
    auto partial = run(*e, r);
    CHECK(partial.last.metrics.num_cached_prompt_tokens == 20);
    CHECK(partial.tokens == out.tokens);
  }
}

TEST_CASE("engine: export refuses requests that are not running", "[kv_migration][engine]") {
  auto e = start_engine();
  std::promise<kv_snapshot> p;
  e->export_kv(12345, [&](kv_snapshot&& s) { p.set_value(std::move(s)); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  CHECK_THAT(f.get().error, Catch::Contains("not running"));
}
