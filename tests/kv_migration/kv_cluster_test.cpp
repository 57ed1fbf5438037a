// Migration by KV shipping across `actorserve serve` processes on loopback (CPU backend, demo
// model): SIGTERM drains the node running a stream, which exports the sequence's K/V; the node
// that resumes it fetches and imports the chunks and continues from the next token. The stream
// equals the uninterrupted run; a corrupted chunk makes the migration fall back to
// recomputation, and the stream is still identical.
#include "tests/cluster/cluster_harness.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace actorserve::testing::cluster;

namespace {

std::string long_prompt(int i) {
  std::string p = "Story " + std::to_string(i) + ":";
  for (int k = 0; k < 40; ++k)
    p += " the little robot walked to the market and counted " + std::to_string(k * 7 + i) + " apples.";
  return p;
}

constexpr int max_tokens = 160; // long enough to be mid-stream when the move comes

// Streams `prompts` through node 0 at the same time; `mid_stream` runs once every stream has
// received a few chunks (or after 60 s); returns the streams once all ended.
std::vector<stream_result> streams_with(int port, const std::vector<std::string>& prompts, const stream_options& opt,
                                        const std::function<void()>& mid_stream) {
  std::vector<stream_result> results(prompts.size());
  std::atomic<size_t> started{0};
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] {
      bool counted = false;
      results[i] = stream_completion(
          port, prompts[i], max_tokens,
          [&](int chunks) {
            if (chunks >= 6 && !counted) {
              counted = true;
              ++started;
            }
          },
          opt);
    });
  const auto end = steady::now() + 60s;
  while (started < prompts.size() && steady::now() < end)
    std::this_thread::sleep_for(5ms);
  mid_stream();
  for (auto& t : clients)
    t.join();
  return results;
}

struct kv_run {
  std::vector<std::string> reference, migrated;
  double imports = 0, fallbacks = 0, migrations = 0;
};

// Two nodes, round-robin from node 0: of two concurrent streams one runs on node 1, which is
// then sent SIGTERM mid-stream.
kv_run migrate_mid_stream(const std::vector<std::string>& extra) {
  cluster c(2, extra);
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  constexpr int n = 2;
  kv_run out;
  out.reference.resize(n);
  out.migrated.resize(n);
  const std::vector<std::string> prompts{long_prompt(0), long_prompt(1)};
  for (int i = 0; i < n; ++i) {
    auto r = stream_completion(c.nodes[0]->http_port, prompts[size_t(i)], max_tokens);
    REQUIRE(r.ok);
    out.reference[size_t(i)] = r.text;
  }
  auto results = streams_with(c.nodes[0]->http_port, prompts, {}, [&] { c.nodes[1]->signal(SIGTERM); });
  for (int i = 0; i < n; ++i) {
    INFO("stream " << i << ": " << results[size_t(i)].error);
    CHECK(results[size_t(i)].ok);
    out.migrated[size_t(i)] = results[size_t(i)].text;
  }
  CHECK(c.nodes[1]->wait_exit() == 0);
  out.imports = c.nodes[0]->metric("actorserve:cluster_kv_imports_total");
  out.fallbacks = c.nodes[0]->metric("actorserve:cluster_kv_fallbacks_total");
  out.migrations = c.nodes[0]->metric("actorserve:cluster_migrated_total");
  INFO(c.nodes[0]->log_text());
  INFO(read_file(c.nodes[1]->log));
  CHECK(out.migrations >= 1);
  return out;
}

} // namespace

TEST_CASE("KV shipping: a stream migrated mid-way by its K/V equals the uninterrupted run",
          "[kv_migration][cluster][multiprocess]") {
  auto r = migrate_mid_stream({"--cluster-policy", "round-robin", "--migration-method", "kv",
                               "--cluster-kv-chunk-bytes", "65536"});
  CHECK(r.migrated == r.reference);
  CHECK(r.imports >= 1);   // imported, not recomputed
  CHECK(r.fallbacks == 0);
}

TEST_CASE("KV shipping: a corrupted chunk falls back to recomputation, the stream is still identical",
          "[kv_migration][cluster][multiprocess]") {
  ::setenv("ACTORSERVE_TEST_CORRUPT_KV_CHUNK", "1", 1); // inherited by the nodes
  auto r = migrate_mid_stream({"--cluster-policy", "round-robin", "--migration-method", "kv",
                               "--cluster-kv-chunk-bytes", "65536"});
  ::unsetenv("ACTORSERVE_TEST_CORRUPT_KV_CHUNK");
  CHECK(r.migrated == r.reference);
  CHECK(r.imports == 0);
  CHECK(r.fallbacks >= 1);
}

TEST_CASE("KV shipping: admin migrate by id moves streams both ways with their K/V, output unchanged",
          "[kv_migration][cluster][multiprocess]") {
  const std::string key = "kv-admin-key";
  cluster c(2, {"--cluster-policy", "round-robin", "--migration-method", "kv", "--api-key", key});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  constexpr int n = 2;
  stream_options opt;
  opt.api_key = key;
  const std::vector<std::string> prompts{long_prompt(5), long_prompt(6)};
  std::vector<std::string> reference(n);
  for (int i = 0; i < n; ++i) {
    auto r = stream_completion(c.nodes[0]->http_port, prompts[size_t(i)], max_tokens, nullptr, opt);
    REQUIRE(r.ok);
    reference[size_t(i)] = r.text;
  }
  int moved = 0;
  auto results = streams_with(c.nodes[0]->http_port, prompts, opt, [&] {
    // Round-robin put one stream on each node: move each to the other one. The one on node 0
    // is exported there and forwarded to node 1 with its transfer; the one on node 1 is
    // exported there on node 0's request and fetched back by node 0.
    auto [status, listing] = admin_call(c.nodes[0]->http_port, "GET", "/admin/requests", {}, key);
    CHECK(status == 200); // CHECK, not REQUIRE: the client threads are still running
    const auto nodes = status == 200 ? listing["live_nodes"].get<std::vector<std::string>>() : std::vector<std::string>{};
    CHECK(nodes.size() == 2);
    if (nodes.size() != 2)
      return;
    for (const auto& r : listing["requests"]) {
      const std::string from = r["running_on"].empty() ? "" : r["running_on"][0].get<std::string>();
      const std::string to = nodes[0] == from ? nodes[1] : nodes[0];
      auto [s, body] = admin_call(c.nodes[0]->http_port, "POST", "/admin/migrate",
                                  {{"request_id", r["request_id"]}, {"to", to}}, key);
      INFO(body.dump());
      CHECK((s == 200 || s == 404)); // 404: finished meanwhile
      moved += s == 200;
    }
  });
  CHECK(moved >= 1);
  for (int i = 0; i < n; ++i) {
    INFO("stream " << i << ": " << results[size_t(i)].error);
    CHECK(results[size_t(i)].ok);
    CHECK(results[size_t(i)].text == reference[size_t(i)]);
  }
  const double imports = c.nodes[0]->metric("actorserve:cluster_kv_imports_total") +
                         c.nodes[1]->metric("actorserve:cluster_kv_imports_total");
  const double fallbacks = c.nodes[0]->metric("actorserve:cluster_kv_fallbacks_total") +
                           c.nodes[1]->metric("actorserve:cluster_kv_fallbacks_total");
  INFO(c.nodes[0]->log_text());
  INFO(c.nodes[1]->log_text());
  WARN("admin migrate: " << moved << " moved, " << imports << " by KV shipping");
  CHECK(imports >= 1); // moves ship their K/V (a request finishing during its export recomputes)
  CHECK(fallbacks == 0);
}
