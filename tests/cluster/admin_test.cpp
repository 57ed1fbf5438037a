// The admin migrate call (gateway/admin_routes.hpp): API-key protected, clear errors for unknown
// requests and nodes, and a migrated greedy or seeded stream equals the unmigrated run.
#include "tests/cluster/cluster_harness.hpp"

#include <catch2/catch.hpp>

using namespace actorserve::testing::cluster;

namespace {

const std::string key = "admin-test-key";

std::string prompt_for(int i) {
  static const char* starts[] = {"Far away", "The old lighthouse", "Numbers and", "Under the bridge"};
  return std::string(starts[i % 4]) + " " + std::to_string(i);
}

// Stream i: greedy when i is even, seeded sampling with penalties when odd.
stream_options options_for(int i) {
  stream_options opt;
  opt.api_key = key;
  if (i % 2)
    opt.extra = {{"temperature", 0.9}, {"seed", 77 + i}, {"frequency_penalty", 0.3}, {"repetition_penalty", 1.1}};
  return opt;
}

} // namespace

TEST_CASE("admin migrate: errors, and migrated greedy and seeded streams equal the unmigrated run",
          "[cluster][multiprocess][admin]") {
  cluster c(3, {"--cluster-policy", "round-robin", "--api-key", key});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  const int port = c.nodes[0]->http_port;

  SECTION("errors") {
    CHECK(admin_call(port, "GET", "/admin/requests", {}, "").first == 401);
    CHECK(admin_call(port, "POST", "/admin/migrate", {{"request_id", 1}}, "wrong").first == 401);
    auto [status, body] = admin_call(port, "POST", "/admin/migrate", {{"request_id", 987654}}, key);
    CHECK(status == 404);
    CHECK(body["error"]["message"].get<std::string>().find("unknown request id 987654") != std::string::npos);
    std::tie(status, body) = admin_call(port, "POST", "/admin/migrate", {{"all", true}, {"to", "no-such-node"}}, key);
    CHECK(status == 404);
    CHECK(body["error"]["message"].get<std::string>().find("no-such-node") != std::string::npos);
    CHECK(admin_call(port, "POST", "/admin/migrate", {{"all", true}}, key).first == 409); // nothing runs here
    CHECK(admin_call(port, "POST", "/admin/migrate", nlohmann::json::array(), key).first == 400);
    CHECK(admin_call(port, "POST", "/admin/migrate", {{"request_id", "x"}}, key).first == 400);
    CHECK(admin_call(port, "POST", "/admin/migrate", {{"request_id", 1}, {"all", true}}, key).first == 400);
  }

  SECTION("migrated streams equal the unmigrated run") {
    constexpr int n = 6, max_tokens = 160;
    std::vector<stream_result> reference(n), migrated(n);
    {
      std::vector<std::thread> clients;
      for (int i = 0; i < n; ++i)
        clients.emplace_back([&, i] {
          reference[size_t(i)] = stream_completion(port, prompt_for(i), max_tokens, nullptr, options_for(i));
        });
      for (auto& t : clients)
        t.join();
    }
    std::atomic<int> started{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i)
      clients.emplace_back([&, i] {
        bool counted = false;
        migrated[size_t(i)] = stream_completion(
            port, prompt_for(i), max_tokens,
            [&](int chunks) {
              if (chunks >= 4 && !counted) {
                counted = true;
                ++started;
              }
            },
            options_for(i));
      });
    const auto end = steady::now() + 30s;
    while (started < n && steady::now() < end)
      std::this_thread::sleep_for(2ms);
    // Every request to another node, one call each.
    auto [status, listing] = admin_call(port, "GET", "/admin/requests", {}, key);
    REQUIRE(status == 200);
    const auto nodes = listing["live_nodes"].get<std::vector<std::string>>();
    REQUIRE(nodes.size() == 3);
    int moved = 0;
    for (const auto& r : listing["requests"]) {
      const std::string from = r["running_on"].empty() ? "" : r["running_on"][0].get<std::string>();
      std::string to;
      for (const auto& name : nodes)
        if (name != from)
          to = name;
      auto [s, body] = admin_call(port, "POST", "/admin/migrate", {{"request_id", r["request_id"]}, {"to", to}}, key);
      INFO(body.dump());
      if (s == 404) // finished in the meantime
        continue;
      CHECK(s == 200);
      moved += s == 200;
    }
    // And everything still running on node 1 to node 0 (the origin, so its placements there
    // arrive as migrate messages naming node 0).
    auto [all_status, all_body] = admin_call(c.nodes[1]->http_port, "POST", "/admin/migrate",
                                             {{"all", true}, {"to", listing["node"]}}, key);
    INFO(all_body.dump());
    CHECK((all_status == 200 || all_status == 409));
    for (auto& t : clients)
      t.join();
    for (int i = 0; i < n; ++i) {
      INFO("stream " << i << ": " << migrated[size_t(i)].error);
      REQUIRE(reference[size_t(i)].ok);
      CHECK(migrated[size_t(i)].ok);
      CHECK(migrated[size_t(i)].text == reference[size_t(i)].text);
    }
    const double count = c.nodes[0]->metric("actorserve:cluster_migrated_total");
    WARN("admin migrate: " << moved << " requests moved by id, 'all' on node 1 answered " << all_status
                           << "; migrated_total on node 0 " << count);
    CHECK(moved >= n / 2);
    CHECK(count >= moved);
  }
}
