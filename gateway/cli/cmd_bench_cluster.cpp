// `actorserve bench-cluster`: what the cluster layer costs a request, on loopback.
//   routing: the same short requests (one at a time) submitted straight to an engine, through a
//     node's router placed on its own engine, and through the router placed on a peer (forward
//     over CAF's middleman, events relayed back): latency submit -> final event, mean/p50/p99;
//     the extra latency of the remote path over the direct one is the routing overhead.
//   migration: a stream moved by an admin migrate call after a few tokens, by recomputation:
//     pause per 1,000 tokens of context;
//   failover: a streaming request runs on the peer; the peer's cluster node is shut down (its
//     connections close, as when a pod is killed) and the client's pause is measured: last token
//     before -> first token after the resume on the surviving node.
// Two nodes in this process, each its own engine (CPU backend) and its own CAF actor system
// talking over loopback TCP, as separate pods do. Figures, not a pass/fail test.
#include "actors/cluster/node.hpp"
#include "gateway/cli/command.hpp"
#include "model/cpu_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <thread>

namespace actorserve::cli {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct bench_cluster_options {
  std::string model = "models/demo";
  int32_t requests = 300;   // per path
  int32_t prompt_tokens = 16;
  int32_t max_tokens = 4;
  int32_t failovers = 5;
  std::vector<int32_t> contexts{250, 500, 900}; // migration by recomputation
  int32_t repeats = 3;
  int32_t threads = 1;
};

// Collects one request's events; waits for tokens or the end.
struct waiter {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<clock_type::time_point> token_times;
  bool finished = false;
  std::string error;

  output_sink sink() {
    return [this](request_output&& out) {
      std::lock_guard lock(mu);
      for (const auto& c : out.choices)
        for (size_t i = 0; i < c.token_ids.size(); ++i)
          token_times.push_back(clock_type::now());
      if (out.finished) {
        finished = true;
        if (out.error != engine_errc::none)
          error = out.error_message.empty() ? to_string(out.error) : out.error_message;
      }
      changed.notify_all();
    };
  }
  template <class Pred> bool wait(Pred pred, std::chrono::seconds timeout = 120s) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, timeout, pred);
  }
};

struct stats {
  double mean = 0, p50 = 0, p99 = 0;
};

stats summarize(std::vector<double> v);

// Median gap between the first `count` tokens of a stream (its normal pace), ms.
double median_gap(const std::vector<clock_type::time_point>& times, size_t count) {
  std::vector<double> g;
  for (size_t i = 1; i < count && i < times.size(); ++i)
    g.push_back(std::chrono::duration<double, std::milli>(times[i] - times[i - 1]).count());
  return summarize(g).p50;
}

stats summarize(std::vector<double> v) {
  stats s;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, size_t(double(v.size()) * 0.99))];
  return s;
}

generate_request request_for(const bench_cluster_options& o, int32_t salt, int32_t max_tokens) {
  generate_request r;
  for (int32_t i = 0; i < o.prompt_tokens; ++i)
    r.prompt_token_ids.push_back(11 + (i * 37 + salt * 101) % 3000);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.detokenize = false;
  r.sampling.temperature = 0;
  return r;
}

struct two_nodes {
  std::unique_ptr<engine> eng_a, eng_b;
  std::unique_ptr<cluster::cluster_node> node_a, node_b;

  two_nodes(const bench_cluster_options& o, cluster::route_policy policy) {
    cpu_backend_options bo;
    bo.num_threads = o.threads;
    engine_config ec;
    ec.enable_prefix_caching = false; // every request computes its prompt, on every path
    auto make = [&] { return engine::start(ec, [&] { return make_cpu_backend(o.model, bo); }); };
    eng_a = make();
    eng_b = make();
    auto config = [&](const std::string& name) {
      cluster::cluster_config c;
      c.host = "127.0.0.1";
      c.name = name;
      c.policy = policy;
      c.migration = cluster::migration_method::recompute;
      c.suspect_after = 10s; // a busy machine must not declare anyone dead
      return c;
    };
    node_b = cluster::cluster_node::start(config("bench-b"), *eng_b);
    auto ca = config("bench-a");
    ca.peers = {"127.0.0.1:" + std::to_string(node_b->port())};
    node_a = cluster::cluster_node::start(ca, *eng_a);
    for (auto end = clock_type::now() + 20s; clock_type::now() < end;) {
      if (node_a->counters().peers_alive == 1 && node_b->counters().peers_alive == 1)
        return;
      std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("the two bench nodes did not connect");
  }
};

// Latency of one request, submit -> final event, through `submit`.
template <class Submit> double timed(Submit&& submit, generate_request r) {
  waiter w;
  const auto t0 = clock_type::now();
  const submit_result s = submit(std::move(r), w.sink());
  if (!s)
    throw std::runtime_error("submit failed: " + s.message);
  if (!w.wait([&] { return w.finished; }))
    throw std::runtime_error("a request did not finish");
  if (!w.error.empty())
    throw std::runtime_error("a request failed: " + w.error);
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

void bench_routing(const bench_cluster_options& o) {
  two_nodes n(o, cluster::route_policy::round_robin);
  std::vector<double> direct, local, remote;
  // Warm-up: both engines and the connection.
  for (int32_t i = 0; i < 8; ++i)
    timed([&](generate_request r, output_sink s) { return n.node_a->submit(std::move(r), std::move(s)); },
          request_for(o, i, o.max_tokens));
  for (int32_t i = 0; i < o.requests; ++i) {
    // Straight to engine B (the engine the remote path ends on), then through A's router twice
    // (round-robin: once on A's own engine, once forwarded to B), interleaved so drift hits all.
    direct.push_back(timed([&](generate_request r, output_sink s) { return n.eng_b->submit(std::move(r), std::move(s)); },
                           request_for(o, i, o.max_tokens)));
    for (int k = 0; k < 2; ++k) {
      const auto before = n.node_a->counters().routed_remote;
      const double ms =
          timed([&](generate_request r, output_sink s) { return n.node_a->submit(std::move(r), std::move(s)); },
                request_for(o, i, o.max_tokens));
      (n.node_a->counters().routed_remote > before ? remote : local).push_back(ms);
    }
  }
  const stats d = summarize(direct), l = summarize(local), r = summarize(remote);
  std::printf("routing: %d requests per path, %d prompt tokens, %d output tokens, greedy, one at a time\n",
              o.requests, o.prompt_tokens, o.max_tokens);
  std::printf("  %-34s %9s %9s %9s\n", "path (ms, submit -> final event)", "mean", "p50", "p99");
  std::printf("  %-34s %9.3f %9.3f %9.3f\n", "engine directly", d.mean, d.p50, d.p99);
  std::printf("  %-34s %9.3f %9.3f %9.3f\n", "router -> own engine", l.mean, l.p50, l.p99);
  std::printf("  %-34s %9.3f %9.3f %9.3f\n", "router -> peer (loopback)", r.mean, r.p50, r.p99);
  std::printf("  routing overhead to a peer: mean %+.3f ms, p50 %+.3f ms, p99 %+.3f ms; to the own engine: "
              "mean %+.3f ms\n",
              r.mean - d.mean, r.p50 - d.p50, r.p99 - d.p99, l.mean - d.mean);
  std::fflush(stdout);
}

void bench_failover(const bench_cluster_options& o) {
  std::vector<double> pauses, gaps;
  for (int32_t trial = 0; trial < o.failovers; ++trial) {
    two_nodes n(o, cluster::route_policy::round_robin);
    // Round-robin from A: the first request stays on A, the second goes to B (the victim).
    waiter first, w;
    if (!n.node_a->submit(request_for(o, 1000 + trial, 1), first.sink()))
      throw std::runtime_error("submit failed");
    first.wait([&] { return first.finished; });
    if (!n.node_a->submit(request_for(o, 2000 + trial, 200), w.sink()))
      throw std::runtime_error("submit failed");
    if (!w.wait([&] { return w.token_times.size() >= 20 || w.finished; }) || w.finished)
      throw std::runtime_error("the stream ended before the failover");
    if (n.node_a->counters().routed_remote != 1)
      throw std::runtime_error("the stream was not placed on the peer");
    n.node_b.reset(); // the peer's cluster layer goes away: connections close, A resumes the stream
    size_t seen;
    {
      std::lock_guard lock(w.mu);
      seen = w.token_times.size();
      gaps.push_back(median_gap(w.token_times, seen));
    }
    if (!w.wait([&] { return w.finished; }))
      throw std::runtime_error("the stream did not finish after the failover");
    if (!w.error.empty())
      throw std::runtime_error("the stream failed: " + w.error);
    // The longest gap after the loss is the pause the client saw.
    double pause = 0;
    {
      std::lock_guard lock(w.mu);
      for (size_t i = std::max<size_t>(seen, 1); i < w.token_times.size(); ++i)
        pause = std::max(pause, std::chrono::duration<double, std::milli>(w.token_times[i] - w.token_times[i - 1]).count());
      if (w.token_times.size() != 200)
        throw std::runtime_error("the resumed stream has " + std::to_string(w.token_times.size()) + " tokens, not 200");
    }
    if (n.node_a->counters().failed_over != 1)
      throw std::runtime_error("node A did not count the failover");
    pauses.push_back(pause);
  }
  const stats p = summarize(pauses), g = summarize(gaps);
  std::printf("failover: %d trials, a 200-token stream placed on the peer, the peer's cluster node shut down "
              "after 20 tokens\n",
              o.failovers);
  std::printf("  client pause (longest gap after the loss): mean %.1f ms, p50 %.1f ms, max %.1f ms; normal token gap "
              "p50 %.1f ms\n",
              p.mean, p.p50, *std::max_element(pauses.begin(), pauses.end()), g.p50);
  std::fflush(stdout);
}

// Admin migration (cluster_node::migrate) of a stream by recomputation: the new node prefills
// prompt + delivered tokens. Pause = migrate call -> first token from the new node.
void bench_migrate(const bench_cluster_options& o) {
  std::printf("migration by recomputation (admin migrate to the peer after 8 tokens), median of %d:\n", o.repeats);
  std::printf("  %8s %10s %18s %14s\n", "context", "pause ms", "ms per 1k tokens", "token gap ms");
  for (int32_t context : o.contexts) {
    std::vector<double> pauses, gaps;
    for (int32_t trial = 0; trial < o.repeats; ++trial) {
      bench_cluster_options big = o;
      big.prompt_tokens = context;
      two_nodes n(big, cluster::route_policy::round_robin); // the first request stays on A
      waiter w;
      const submit_result s = n.node_a->submit(request_for(big, 3000 + trial, 40), w.sink());
      if (!s)
        throw std::runtime_error("submit failed: " + s.message);
      if (!w.wait([&] { return w.token_times.size() >= 8 || w.finished; }) || w.finished)
        throw std::runtime_error("the stream ended before the migration");
      size_t seen;
      {
        std::lock_guard lock(w.mu);
        seen = w.token_times.size();
        gaps.push_back(median_gap(w.token_times, seen));
      }
      const auto t0 = clock_type::now();
      const cluster::migrate_result m = n.node_a->migrate(s.request_id, "bench-b");
      if (m.status != 200)
        throw std::runtime_error("migrate: " + m.message);
      // The first token after the call that comes from the new node: events of the old
      // placement are dropped once it moved, so the next token is the new node's.
      if (!w.wait([&] { return w.token_times.size() > seen || w.finished; }))
        throw std::runtime_error("no token after the migration");
      {
        std::lock_guard lock(w.mu);
        if (w.token_times.size() <= seen)
          throw std::runtime_error("the stream ended at the migration: " + w.error);
        pauses.push_back(std::chrono::duration<double, std::milli>(w.token_times[seen] - t0).count());
      }
      w.wait([&] { return w.finished; });
      if (!w.error.empty() || w.token_times.size() != 40)
        throw std::runtime_error("the migrated stream failed or lost tokens: " + w.error);
    }
    const stats p = summarize(pauses), g = summarize(gaps);
    std::printf("  %8d %10.1f %18.1f %14.1f\n", context, p.p50, p.p50 * 1000.0 / context, g.p50);
    std::fflush(stdout);
  }
}

const command_registrar registrar{
    "bench-cluster", "Cluster routing overhead per request and failover pause (two in-process nodes on loopback)",
    [](CLI::App& app) -> std::function<int()> {
      auto o = std::make_shared<bench_cluster_options>();
      app.add_option("--model", o->model, "model folder (CPU backend)")->capture_default_str();
      app.add_option("--requests", o->requests, "requests per routing path")->capture_default_str();
      app.add_option("--prompt-tokens", o->prompt_tokens, "prompt length of the routing requests")->capture_default_str();
      app.add_option("--max-tokens", o->max_tokens, "output tokens of the routing requests")->capture_default_str();
      app.add_option("--failovers", o->failovers, "failover trials")->capture_default_str();
      app.add_option("--cpu-threads", o->threads, "CPU backend threads per node")->capture_default_str();
      app.add_option("--contexts", o->contexts, "prompt lengths for the migration figures")
          ->capture_default_str()
          ->delimiter(',');
      app.add_option("--repeats", o->repeats, "migration trials per context (median)")->capture_default_str();
      return [o] {
        spdlog::set_level(spdlog::level::warn);
        bench_routing(*o);
        if (o->failovers > 0)
          bench_failover(*o);
        if (!o->contexts.empty() && o->repeats > 0)
          bench_migrate(*o);
        return 0;
      };
    }};

} // namespace
} // namespace actorserve::cli
