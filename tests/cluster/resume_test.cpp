// Seeded sampling across failover: kill -9 of a node mid-stream, and every stream (each choice
// of n > 1 requests included) equals the uninterrupted run exactly, with temperature, a seed and
// penalties. The resumed placement continues the sampling index, the penalties' counts and the
// stop-string window from the tokens the client received (generate_request::resume_output_token_ids).
#include "tests/cluster/cluster_harness.hpp"

#include <catch2/catch.hpp>

using namespace actorserve::testing::cluster;

namespace {

std::string prompt_for(int i) {
  static const char* starts[] = {"Once upon a time", "The river", "Seven bridges", "Quietly the"};
  return std::string(starts[i % 4]) + " " + std::to_string(i);
}

struct run_result {
  std::vector<stream_result> streams;
  double failed_over = 0;
  double failover_errors = 0;
};

// `count` streams through node 0 of a fresh 3-node round-robin cluster; with `kill`, node 2 is
// killed once every stream has `kill_after_chunks` chunks.
run_result run_streams(int count, int max_tokens, const nlohmann::json& extra, bool kill, int kill_after_chunks = 4) {
  cluster c(3, {"--cluster-policy", "round-robin"});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  run_result out;
  out.streams.resize(size_t(count));
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < count; ++i)
    clients.emplace_back([&, i] {
      stream_options opt;
      opt.extra = extra;
      opt.extra["seed"] = 1000 + i;
      bool counted = false;
      out.streams[size_t(i)] = stream_completion(
          c.nodes[0]->http_port, prompt_for(i), max_tokens,
          [&](int chunks) {
            if (chunks >= kill_after_chunks && !counted) {
              counted = true;
              ++started;
            }
          },
          opt);
    });
  if (kill) {
    const auto end = steady::now() + 30s;
    while (started < count && steady::now() < end)
      std::this_thread::sleep_for(2ms);
    c.nodes[2]->signal(SIGKILL); // round-robin put a third of the placements there
  }
  for (auto& t : clients)
    t.join();
  out.failed_over = c.nodes[0]->metric("actorserve:cluster_failed_over_total");
  out.failover_errors = c.nodes[0]->metric("actorserve:cluster_failover_errors_total");
  // Admin calls are refused without an API key configured.
  CHECK(admin_call(c.nodes[0]->http_port, "GET", "/admin/requests", {}, "").first == 403);
  return out;
}

void check_equal(const run_result& reference, const run_result& resumed, int n) {
  for (size_t i = 0; i < reference.streams.size(); ++i) {
    INFO("stream " << i << ": " << resumed.streams[i].error);
    REQUIRE(reference.streams[i].ok);
    CHECK(resumed.streams[i].ok);
    CHECK(int(reference.streams[i].choice_text.size()) == n);
    CHECK(resumed.streams[i].choice_text == reference.streams[i].choice_text);
    CHECK(resumed.streams[i].choice_finish == reference.streams[i].choice_finish);
  }
  CHECK(resumed.failed_over >= 1);
  CHECK(resumed.failover_errors == 0);
}

} // namespace

TEST_CASE("kill -9 mid-stream: seeded streams with penalties continue exactly", "[cluster][multiprocess][resume]") {
  const nlohmann::json extra = {{"temperature", 0.9},       {"top_p", 0.95},          {"repetition_penalty", 1.2},
                                {"presence_penalty", 0.3}, {"frequency_penalty", 0.4}};
  const auto reference = run_streams(6, 100, extra, false);
  const auto resumed = run_streams(6, 100, extra, true);
  check_equal(reference, resumed, 1);
  WARN("seeded failover: " << resumed.failed_over << " streams failed over");
}

TEST_CASE("kill -9 mid-stream: n > 1 requests resume each choice from its own history", "[cluster][multiprocess][resume]") {
  // A stop string ends some choices early (one after a token or two, others after 25-60 tokens;
  // these seeds and prompts), so some have finished before the kill (they must not be repeated)
  // while the others (about half run to max_tokens) are resumed.
  const nlohmann::json extra = {{"n", 3}, {"temperature", 0.8}, {"frequency_penalty", 0.3}, {"stop", {"\n\n"}}};
  const auto reference = run_streams(4, 90, extra, false);
  const auto resumed = run_streams(4, 90, extra, true, 6);
  check_equal(reference, resumed, 3);
  int stopped = 0, by_length = 0;
  for (const auto& s : reference.streams)
    for (const auto& [index, why] : s.choice_finish)
      (why == "stop" ? stopped : by_length) += 1;
  WARN("n = 3 failover: " << resumed.failed_over << " placements failed over; reference choices: " << stopped
                          << " stopped by the stop string, " << by_length << " by length");
}
