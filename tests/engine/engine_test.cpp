// The engine through its public API on the fake backend: concurrency equals isolation,
// cancellation, deadlines, overload, executor failures, stop strings, n > 1, drain, stats.
#include "engine_helpers.hpp"

#include <thread>

using namespace actorserve;
using namespace actorserve::testing;
using namespace std::chrono_literals;

namespace {

std::vector<generate_request> mixed_workload(int count) {
  std::vector<generate_request> out;
  for (int i = 0; i < count; ++i)
    out.push_back(request_of(uint64_t(i + 1), prompt_of(3 + (i * 11) % 41, i), 4 + (i * 5) % 19,
                               i % 2 ? 0.9f : 0.0f, uint64_t(500 + i)));
  return out;
}

} // namespace

TEST_CASE("concurrent requests get the tokens each gets alone", "[engine]") {
  auto reqs = mixed_workload(24);
  std::map<uint64_t, std::vector<int32_t>> alone;
  {
    auto e = engine::start(small_config(), fake_factory(fake_options()));
    for (const auto& r : reqs) {
      auto out = run_all(*e, {r});
      alone[r.id] = out[r.id].tokens[0];
      CHECK(out[r.id].finish[0] == finish_reason::length);
    }
  }
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  auto out = run_all(*e, reqs);
  for (const auto& r : reqs) {
    CHECK(out[r.id].tokens[0] == alone[r.id]);
    CHECK(out[r.id].usage.completion_tokens == r.max_tokens);
    CHECK(out[r.id].usage.prompt_tokens == int32_t(r.prompt_token_ids.size()));
    CHECK(out[r.id].error == engine_errc::none);
  }
  auto s = e->stats();
  CHECK(s.num_finished_requests == 24);
  CHECK(s.num_running == 0);
  CHECK(s.generation_tokens > 0);
  CHECK(s.num_steps > 0);
  CHECK(s.mean_schedule_us > 0);
}

TEST_CASE("a small KV pool preempts and still gives identical output", "[engine]") {
  auto reqs = mixed_workload(16);
  auto big = engine::start(small_config(), fake_factory(fake_options(512)));
  auto expected = run_all(*big, reqs);
  for (auto mode : {preemption_mode::recompute, preemption_mode::swap}) {
    engine_config c = small_config();
    c.preemption = mode;
    c.enable_prefix_caching = mode == preemption_mode::recompute;
    auto o = fake_options(24);
    o.num_host_blocks = 64;
    auto small = engine::start(c, fake_factory(o));
    auto got = run_all(*small, reqs);
    CHECK(small->stats().num_preemptions > 0);
    for (const auto& r : reqs)
      CHECK(got[r.id].tokens[0] == expected[r.id].tokens[0]);
  }
}

TEST_CASE("cancel ends the stream and frees the blocks within an iteration", "[engine]") {
  auto o = fake_options();
  o.step_delay = 2ms;
  auto e = engine::start(small_config(), fake_factory(o));
  output_queue q;
  auto r = request_of(0, prompt_of(40, 1), 1000);
  auto res = e->submit(r, q.sink());
  REQUIRE(res);
  CHECK(res.request_id != 0);
  auto first = q.pop(5s);
  REQUIRE(first);
  CHECK_FALSE(first->finished);
  CHECK(e->stats().num_free_blocks < 256);
  e->cancel(res.request_id);
  std::optional<request_output> last;
  for (int i = 0; i < 2000 && !(last && last->finished); ++i)
    last = q.pop(5s);
  REQUIRE(last);
  REQUIRE(last->finished);
  CHECK(last->error == engine_errc::cancelled);
  REQUIRE_FALSE(last->choices.empty());
  CHECK(last->choices.back().finish == finish_reason::abort);
  // The next iteration frees the blocks; the stats snapshot follows.
  for (int i = 0; i < 100 && e->stats().num_free_blocks < 256; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(e->stats().num_free_blocks == 256);
  CHECK(e->stats().num_running == 0);
}

TEST_CASE("a deadline aborts the request", "[engine]") {
  auto o = fake_options();
  o.step_delay = 2ms;
  auto e = engine::start(small_config(), fake_factory(o));
  auto r = request_of(7, prompt_of(5, 1), 100000 / 64);
  r.deadline = engine_clock::now() + 100ms;
  auto out = run_all(*e, {r});
  CHECK(out[7].error == engine_errc::deadline_exceeded);
  CHECK(out[7].finish[0] == finish_reason::abort);
  CHECK(out[7].tokens[0].size() < size_t(r.max_tokens));
}

TEST_CASE("the waiting queue limit answers overloaded", "[engine]") {
  auto o = fake_options();
  o.step_delay = 5ms;
  engine_config c = small_config();
  c.max_num_seqs = 1;
  c.max_waiting_requests = 3;
  auto e = engine::start(c, fake_factory(o));
  output_queue q;
  int accepted = 0, overloaded = 0;
  for (int i = 0; i < 10; ++i) {
    auto res = e->submit(request_of(0, prompt_of(4, i), 50), q.sink());
    if (res)
      ++accepted;
    else if (res.error == engine_errc::overloaded)
      ++overloaded;
  }
  CHECK(overloaded > 0);
  CHECK(accepted <= 4); // at most the limit plus the one running
  CHECK(e->drain(30s));
}

TEST_CASE("invalid requests are refused with a reason", "[engine]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  output_queue q;
  auto empty = request_of(0, {}, 5);
  auto res = e->submit(empty, q.sink());
  CHECK(res.error == engine_errc::invalid_request);
  CHECK(res.message.find("empty") != std::string::npos);
  auto bad_token = request_of(0, {5, 64}, 5);
  CHECK(e->submit(bad_token, q.sink()).error == engine_errc::invalid_request);
  auto too_long = request_of(0, prompt_of(4096, 1), 5);
  CHECK(e->submit(too_long, q.sink()).error == engine_errc::invalid_request);
  auto stops = request_of(0, {5}, 5);
  stops.stop = {"x"}; // no detokenizer
  CHECK(e->submit(stops, q.sink()).error == engine_errc::invalid_request);
  auto top_p = request_of(0, {5}, 5);
  top_p.sampling.top_p = 0;
  CHECK(e->submit(top_p, q.sink()).error == engine_errc::invalid_request);
  CHECK_FALSE(q.pop(50ms)); // refused requests never reach the sink
}

TEST_CASE("an executor failure fails the guilty request and the engine keeps serving", "[engine]") {
  auto o = fake_options();
  o.vocab_size = 2000; // the poison token is in the vocabulary but never in other prompts
  o.fail_on_token = 1999;
  auto e = engine::start(small_config(), fake_factory(o));
  auto reqs = mixed_workload(6);
  auto poison = request_of(99, {2, 3, 1999, 4}, 5);
  auto all = reqs;
  all.push_back(poison);
  auto out = run_all(*e, all);
  CHECK(out[99].error == engine_errc::executor_failed);
  CHECK(out[99].error_message.find("injected failure") != std::string::npos);
  for (const auto& r : reqs)
    CHECK(out[r.id].error == engine_errc::none);
  CHECK(e->stats().num_executor_failures >= 1);
  auto after = run_all(*e, {request_of(100, {5, 6, 7}, 4)});
  CHECK(after[100].tokens[0].size() == 4);
}

TEST_CASE("a backend that cannot be created fails start with its reason", "[engine]") {
  auto failing = []() -> std::unique_ptr<backend> { throw std::runtime_error("no such model"); };
  try {
    engine::start(small_config(), failing);
    FAIL("start should throw");
  } catch (const std::runtime_error& err) {
    CHECK(std::string(err.what()).find("no such model") != std::string::npos);
  }
}

TEST_CASE("stop strings end a choice and the scheduler stops computing it", "[engine]") {
  auto detok = std::make_shared<id_detokenizer>();
  auto e = engine::start(small_config(), fake_factory(fake_options()), detok);
  auto r = request_of(1, prompt_of(6, 2), 30);
  auto plain = run_all(*e, {r})[1];
  REQUIRE(plain.tokens[0].size() == 30);
  // Stop at the text of the 5th token (its first occurrence).
  std::string stop = "<" + std::to_string(plain.tokens[0][4]) + ">";
  auto r2 = r;
  r2.id = 2;
  r2.stop = {stop};
  auto got = run_all(*e, {r2})[2];
  CHECK(got.finish[0] == finish_reason::stop);
  size_t cut = plain.text[0].find(stop);
  CHECK(got.text[0] == plain.text[0].substr(0, cut));
  CHECK(got.tokens[0].size() <= 5);
}

TEST_CASE("n > 1 streams every choice with its own seed", "[engine]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  auto r = request_of(1, prompt_of(9, 3), 12, 0.8f, 40, 3);
  auto got = run_all(*e, {r})[1];
  REQUIRE(got.tokens.size() == 3);
  for (int32_t i = 0; i < 3; ++i) {
    auto one = request_of(10 + uint64_t(i), r.prompt_token_ids, 12, 0.8f, 40 + uint64_t(i));
    auto alone = run_all(*e, {one})[one.id];
    CHECK(got.tokens[i] == alone.tokens[0]);
    CHECK(got.finish[i] == finish_reason::length);
  }
  CHECK(got.usage.completion_tokens == 36);
}

TEST_CASE("drain waits for live requests, then refuses new ones", "[engine]") {
  auto o = fake_options();
  o.step_delay = 1ms;
  auto e = engine::start(small_config(), fake_factory(o));
  output_queue q;
  for (int i = 0; i < 4; ++i)
    REQUIRE(e->submit(request_of(0, prompt_of(5, i), 20), q.sink()));
  CHECK(e->drain(30s));
  CHECK(e->stats().num_finished_requests == 4);
  CHECK(e->submit(request_of(0, {3}, 2), q.sink()).error == engine_errc::shutting_down);
}

TEST_CASE("stop aborts live requests with shutting_down", "[engine]") {
  auto o = fake_options();
  o.step_delay = 2ms;
  auto e = engine::start(small_config(), fake_factory(o));
  output_queue q;
  REQUIRE(e->submit(request_of(0, prompt_of(5, 1), 100000 / 64), q.sink()));
  REQUIRE(q.pop(5s));
  e->stop();
  std::optional<request_output> last;
  for (int i = 0; i < 2000 && !(last && last->finished); ++i)
    last = q.pop(2s);
  REQUIRE(last);
  CHECK(last->finished);
  CHECK(last->error == engine_errc::shutting_down);
}

TEST_CASE("metrics: queue time, TTFT and inter-token times are reported", "[engine]") {
  auto o = fake_options();
  o.step_delay = 1ms;
  auto e = engine::start(small_config(), fake_factory(o));
  auto out = run_all(*e, {request_of(1, prompt_of(5, 1), 10)})[1];
  CHECK(out.metrics.ttft_s > 0);
  CHECK(out.metrics.e2e_s >= out.metrics.ttft_s);
  CHECK(out.metrics.queue_time_s >= 0);
  CHECK(out.metrics.queue_time_s <= out.metrics.ttft_s);
  CHECK(out.metrics.inter_token_s.size() == 9);
  for (double gap : out.metrics.inter_token_s)
    CHECK(gap > 0.0005);
}

TEST_CASE("prefix cache statistics count repeated prompts", "[engine]") {
  auto e = engine::start(small_config(), fake_factory(fake_options()));
  auto p = prompt_of(33, 5);
  run_all(*e, {request_of(1, p, 2)});
  auto second = run_all(*e, {request_of(2, p, 2)})[2];
  CHECK(second.metrics.num_cached_prompt_tokens == 32);
  auto s = e->stats();
  CHECK(s.prefix_cache_queries == 66);
  CHECK(s.prefix_cache_hits == 32);
}
