// Several `actorserve serve` processes on loopback forming one cluster (demo model, CPU).
#include "tests/cluster/cluster_harness.hpp"

#include "actors/cluster/wire.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <mutex>

using namespace actorserve::testing::cluster;

namespace {

std::string prompt_for(int i) {
  static const char* starts[] = {"The cat", "A wise man once said", "In the beginning", "Never trust",
                                 "Computers are", "Love is", "The best way to", "Tomorrow"};
  return std::string(starts[i % 8]) + " " + std::to_string(i);
}

double routed_remote(const node& n) { return n.metric("actorserve:cluster_routed_remote_total"); }

} // namespace

TEST_CASE("3 nodes: 200 concurrent streams through one gateway all complete and load is spread",
          "[cluster][multiprocess]") {
  cluster c(3);
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  const auto t0 = steady::now();
  std::vector<stream_result> results(200);
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i)
    clients.emplace_back([&, i] { results[size_t(i)] = stream_completion(c.nodes[0]->http_port, prompt_for(i), 12); });
  for (auto& t : clients)
    t.join();
  const double wall_s = std::chrono::duration<double>(steady::now() - t0).count();
  int ok = 0;
  std::map<std::string, int> failures;
  for (const auto& r : results) {
    const bool good = r.ok && r.finish_reason == "length";
    ok += good;
    if (!good)
      ++failures["status " + std::to_string(r.status) + " finish '" + r.finish_reason + "' " + r.error];
  }
  for (const auto& [what, count] : failures)
    UNSCOPED_INFO(count << " x " << what);
  CHECK(ok == 200);
  const double local = c.nodes[0]->metric("actorserve:cluster_routed_local_total");
  const double remote = routed_remote(*c.nodes[0]);
  const double on_b = c.nodes[1]->metric("actorserve:cluster_executed_for_peers_total");
  const double on_c = c.nodes[2]->metric("actorserve:cluster_executed_for_peers_total");
  WARN("200 streams in " << wall_s << " s; placed: local " << local << ", b " << on_b << ", c " << on_c);
  CHECK(local + remote == 200);
  CHECK(on_b + on_c == remote);
  // Spread: every node ran a fair share.
  CHECK(local >= 30);
  CHECK(on_b >= 30);
  CHECK(on_c >= 30);
}

TEST_CASE("prefix-affinity sends shared-prefix requests to one node", "[cluster][multiprocess]") {
  cluster c(3, {"--cluster-policy", "prefix-affinity"});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  // Four groups of requests; within a group the prompts share a long prefix (several blocks).
  const std::string shared[] = {
      "Once upon a time there was a little program that wanted to serve language models to the whole world",
      "The quick brown fox jumps over the lazy dog while the cluster routes every request to a node",
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was foolishness",
      "All happy families are alike; each unhappy family is unhappy in its own way, said the old book"};
  std::map<std::string, double> before_remote;
  int total = 0, grouped_on_one = 0;
  for (int g = 0; g < 4; ++g) {
    double before[3];
    before[0] = c.nodes[0]->metric("actorserve:cluster_routed_local_total");
    before[1] = c.nodes[1]->metric("actorserve:cluster_executed_for_peers_total");
    before[2] = c.nodes[2]->metric("actorserve:cluster_executed_for_peers_total");
    // The first request teaches the cluster where the prefix lives; the rest follow it.
    REQUIRE(stream_completion(c.nodes[0]->http_port, shared[g] + " #0", 4).ok);
    std::this_thread::sleep_for(300ms); // one load report
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 1; i <= 7; ++i)
      clients.emplace_back([&, i] { ok += stream_completion(c.nodes[0]->http_port, shared[g] + " #" + std::to_string(i), 4).ok; });
    for (auto& t : clients)
      t.join();
    CHECK(ok == 7);
    double delta[3];
    delta[0] = c.nodes[0]->metric("actorserve:cluster_routed_local_total") - before[0];
    delta[1] = c.nodes[1]->metric("actorserve:cluster_executed_for_peers_total") - before[1];
    delta[2] = c.nodes[2]->metric("actorserve:cluster_executed_for_peers_total") - before[2];
    total += 8;
    grouped_on_one += int(std::max({delta[0], delta[1], delta[2]}));
    CHECK(std::max({delta[0], delta[1], delta[2]}) == 8);
  }
  const double hits = c.nodes[0]->metric("actorserve:cluster_affinity_hits_total");
  WARN("prefix affinity: " << grouped_on_one << "/" << total << " requests on their group's node, affinity hits "
                           << hits << " (hit rate " << hits / total << ")");
  CHECK(hits >= 4 * 7);
}

TEST_CASE("kill -9 of a node mid-stream: every stream completes with the uninterrupted greedy tokens",
          "[cluster][multiprocess]") {
  cluster c(3, {"--cluster-policy", "round-robin"});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  constexpr int n = 9, max_tokens = 160;
  std::vector<std::string> reference(n);
  {
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i)
      clients.emplace_back([&, i] {
        auto r = stream_completion(c.nodes[0]->http_port, prompt_for(i), max_tokens);
        reference[size_t(i)] = r.ok ? r.text : "<failed>";
      });
    for (auto& t : clients)
      t.join();
  }
  std::vector<stream_result> results(n);
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      bool counted = false;
      results[size_t(i)] = stream_completion(c.nodes[0]->http_port, prompt_for(i), max_tokens, [&](int chunks) {
        if (chunks >= 5 && !counted) {
          counted = true;
          ++started;
        }
      });
    });
  const auto end = steady::now() + 30s;
  while (started < n && steady::now() < end)
    std::this_thread::sleep_for(5ms);
  c.nodes[2]->signal(SIGKILL); // round-robin put a third of the streams there
  const auto killed = steady::now();
  for (auto& t : clients)
    t.join();
  double max_gap = 0;
  for (int i = 0; i < n; ++i) {
    INFO("stream " << i << ": " << results[size_t(i)].error);
    CHECK(results[size_t(i)].ok);
    CHECK(results[size_t(i)].text == reference[size_t(i)]);
    max_gap = std::max(max_gap, results[size_t(i)].max_gap_s);
  }
  const double failed_over = c.nodes[0]->metric("actorserve:cluster_failed_over_total");
  const double pause = c.nodes[0]->metric("actorserve:cluster_last_failover_pause_seconds");
  WARN("kill -9: " << failed_over << " streams failed over, failover pause " << pause
                   << " s, longest client gap " << max_gap << " s, streams done "
                   << std::chrono::duration<double>(steady::now() - killed).count() << " s after the kill");
  CHECK(failed_over >= 2);
  CHECK(c.nodes[0]->metric("actorserve:cluster_failover_errors_total") == 0);
}

TEST_CASE("SIGSTOP of a node: detected within 5 s and routed around", "[cluster][multiprocess]") {
  cluster c(3, {"--cluster-policy", "round-robin"});
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  // Streams in flight on the frozen node move too.
  std::vector<stream_result> results(6);
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&, i] {
      bool counted = false;
      results[size_t(i)] = stream_completion(c.nodes[0]->http_port, prompt_for(i), 120, [&](int chunks) {
        if (chunks >= 3 && !counted) {
          counted = true;
          ++started;
        }
      });
    });
  const auto wait_end = steady::now() + 30s;
  while (started < 6 && steady::now() < wait_end)
    std::this_thread::sleep_for(5ms);
  c.nodes[2]->signal(SIGSTOP);
  const auto stopped = steady::now();
  double detected_s = -1;
  while (steady::now() - stopped < 10s) {
    if (c.nodes[0]->metric("actorserve:cluster_peers_alive") == 1) {
      detected_s = std::chrono::duration<double>(steady::now() - stopped).count();
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  WARN("frozen peer detected after " << detected_s << " s");
  CHECK(detected_s > 0);
  CHECK(detected_s < 5.0);
  for (auto& t : clients)
    t.join();
  for (const auto& r : results)
    CHECK(r.ok);
  // New requests avoid the frozen node and complete.
  const double before = c.nodes[2]->pid > 0 ? 0 : 0;
  (void)before;
  std::vector<std::thread> more;
  std::atomic<int> ok{0};
  for (int i = 0; i < 9; ++i)
    more.emplace_back([&, i] { ok += stream_completion(c.nodes[0]->http_port, prompt_for(i), 8).ok; });
  for (auto& t : more)
    t.join();
  CHECK(ok == 9);
  c.nodes[2]->signal(SIGCONT);
}

TEST_CASE("rolling restart of all 3 nodes under load fails no request", "[cluster][multiprocess]") {
  cluster c(3);
  REQUIRE(c.ready());
  REQUIRE(c.joined());
  std::atomic<bool> stop{false};
  std::atomic<int> completed{0}, failed{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w)
    workers.emplace_back([&, w] {
      int i = w;
      while (!stop) {
        // Like a Service: a node that refuses the connection or answers 503 before streaming is
        // skipped; anything after the stream started must complete.
        for (int attempt = 0; attempt < 30; ++attempt) {
          const node& n = *c.nodes[size_t((i + attempt) % 3)];
          auto r = stream_completion(n.http_port, prompt_for(i), 24);
          if (r.status == 0 || r.status == 503)
            continue;
          if (r.ok && r.finish_reason == "length") {
            ++completed;
          } else {
            ++failed;
            std::lock_guard lock(errors_mutex);
            errors.push_back("status " + std::to_string(r.status) + " finish '" + r.finish_reason + "' " + r.error);
          }
          break;
        }
        ++i;
      }
    });
  std::this_thread::sleep_for(1s);
  for (auto& n : c.nodes) {
    n->signal(SIGTERM);
    const int status = n->wait_exit();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    n->start(c.dir.path(), c.peers); // a new incarnation on the same ports
    REQUIRE(n->ready());
    std::this_thread::sleep_for(1s);
  }
  stop = true;
  for (auto& t : workers)
    t.join();
  for (const auto& e : errors)
    UNSCOPED_INFO(e);
  WARN("rolling restart: " << completed << " requests completed, " << failed << " failed");
  CHECK(failed == 0);
  CHECK(completed > 20);
  CHECK(c.joined());
}

TEST_CASE("a peer with the wrong protocol version or a stale incarnation is refused", "[cluster][multiprocess]") {
  actorserve::testing::temp_dir dir;
  node a;
  a.http_port = free_port();
  a.cluster_port = free_port();
  const std::string a_addr = "127.0.0.1:" + std::to_string(a.cluster_port);
  a.start(dir.path(), a_addr);
  REQUIRE(a.ready());

  node wrong;
  wrong.http_port = free_port();
  wrong.cluster_port = free_port();
  wrong.extra = {"--cluster-protocol-version", "99"};
  wrong.start(dir.path(), a_addr);
  REQUIRE(wrong.ready());
  std::this_thread::sleep_for(1500ms);
  CHECK(a.metric("actorserve:cluster_peers_alive") == 0);
  CHECK(a.metric("actorserve:cluster_handshakes_refused_total") >= 1);
  CHECK_THAT(a.log_text(), Catch::Contains("protocol version 99, this node speaks " +
                                           std::to_string(actorserve::cluster::protocol_version)));
  CHECK_THAT(wrong.log_text(), Catch::Contains("refused us"));
  wrong.signal(SIGKILL);
  wrong.wait_exit();

  node b;
  b.http_port = free_port();
  b.cluster_port = free_port();
  b.extra = {"--cluster-incarnation", "1000", "--cluster-name", "node-b"};
  b.start(dir.path(), a_addr);
  REQUIRE(b.ready());
  const auto end = steady::now() + 10s;
  while (a.metric("actorserve:cluster_peers_alive") != 1 && steady::now() < end)
    std::this_thread::sleep_for(100ms);
  REQUIRE(a.metric("actorserve:cluster_peers_alive") == 1);
  b.signal(SIGKILL);
  b.wait_exit();
  b.extra = {"--cluster-incarnation", "500", "--cluster-name", "node-b"}; // a restarted pod with an older number
  b.start(dir.path(), a_addr);
  REQUIRE(b.ready());
  std::this_thread::sleep_for(1500ms);
  CHECK(a.metric("actorserve:cluster_peers_alive") == 0);
  CHECK_THAT(a.log_text(), Catch::Contains("stale incarnation 500 of node node-b (current 1000)"));
  b.signal(SIGKILL);
  b.wait_exit();
  b.extra = {"--cluster-incarnation", "2000", "--cluster-name", "node-b"};
  b.start(dir.path(), a_addr);
  REQUIRE(b.ready());
  const auto end2 = steady::now() + 10s;
  while (a.metric("actorserve:cluster_peers_alive") != 1 && steady::now() < end2)
    std::this_thread::sleep_for(100ms);
  CHECK(a.metric("actorserve:cluster_peers_alive") == 1);
}
