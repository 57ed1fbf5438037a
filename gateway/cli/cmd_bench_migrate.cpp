// `actorserve bench-migrate`: migration time per 1,000 tokens of context, by KV shipping and by
// recomputation. For each context length and method it starts two cluster nodes in this
// process (each its own engine on the CPU backend, talking over loopback TCP through CAF's
// middleman exactly as separate pods do), streams one greedy request, drains the node running
// it after a few tokens, and measures the client's pause: drain decision -> first token from
// the new node. The normal inter-token gap is printed next to it for scale.
#include "actors/cluster/node.hpp"
#include "gateway/cli/command.hpp"
#include "model/config.hpp"
#include "model/cpu_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace actorserve::cli {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct bench_migrate_options {
  std::string model = "models/demo";
  std::vector<int32_t> contexts{250, 500, 1000};
  int32_t repeats = 3;
  int32_t threads = 1;
  std::string served_model_name = "demo";
};

struct stream_log {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<clock_type::time_point> token_times;
  bool finished = false;
  std::string error;
};

struct trial {
  double pause_ms = 0;   // drain -> first token after it
  double gap_ms = 0;     // median inter-token gap before the drain
  bool migrated = false; // the node counted a migration (and, for kv, an import)
};

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

trial run_trial(const bench_migrate_options& o, int32_t context, cluster::migration_method method) {
  cpu_backend_options bo;
  bo.num_threads = o.threads;
  bo.num_blocks = 2 * (context + 256) / 16 + 16;
  engine_config ec;
  ec.enable_prefix_caching = false; // a recompute must not find the prompt cached
  auto make = [&] { return engine::start(ec, [&] { return make_cpu_backend(o.model, bo); }); };
  auto eng_a = make(), eng_b = make();
  const std::string model_id =
      cluster::kv_model_id(o.served_model_name, read_text(std::filesystem::path(o.model) / "config.json"));
  auto config = [&](const std::string& name) {
    cluster::cluster_config c;
    c.host = "127.0.0.1";
    c.name = name;
    c.migration = method;
    c.model_id = model_id;
    c.suspect_after = 10s; // a busy 2-core machine must not declare anyone dead
    return c;
  };
  auto node_b = cluster::cluster_node::start(config("bench-b"), *eng_b);
  auto ca = config("bench-a");
  ca.peers = {"127.0.0.1:" + std::to_string(node_b->port())};
  auto node_a = cluster::cluster_node::start(ca, *eng_a);
  for (auto end = clock_type::now() + 20s; clock_type::now() < end;) {
    if (node_a->counters().peers_alive == 1 && node_b->counters().peers_alive == 1)
      break;
    std::this_thread::sleep_for(20ms);
  }
  if (node_a->counters().peers_alive != 1)
    throw std::runtime_error("the two bench nodes did not connect");

  generate_request r;
  for (int32_t i = 0; i < context; ++i)
    r.prompt_token_ids.push_back(7 + (i * 37) % 3000);
  r.max_tokens = 24;
  r.ignore_eos = true;
  r.detokenize = false;
  r.sampling.temperature = 0;
  auto log = std::make_shared<stream_log>();
  auto submitted = node_a->submit(r, [log](request_output&& out) {
    std::lock_guard lock(log->mu);
    for (const auto& c : out.choices)
      for (size_t i = 0; i < c.token_ids.size(); ++i)
        log->token_times.push_back(clock_type::now());
    if (out.finished) {
      log->finished = true;
      log->error = out.error_message;
    }
    log->changed.notify_all();
  });
  if (!submitted)
    throw std::runtime_error("submit failed: " + submitted.message);
  const size_t before = 8;
  {
    std::unique_lock lock(log->mu);
    if (!log->changed.wait_for(lock, 120s, [&] { return log->token_times.size() >= before || log->finished; }))
      throw std::runtime_error("no tokens");
  }
  // The node running it: this one when it placed the request locally.
  const bool local = node_a->counters().routed_local == 1;
  cluster::cluster_node& running = local ? *node_a : *node_b;
  size_t seen;
  std::vector<double> gaps;
  {
    std::lock_guard lock(log->mu);
    seen = log->token_times.size();
    for (size_t i = 1; i < seen; ++i)
      gaps.push_back(std::chrono::duration<double, std::milli>(log->token_times[i] - log->token_times[i - 1]).count());
  }
  const auto t0 = clock_type::now();
  std::thread drainer([&] { running.drain(60s); });
  trial t;
  {
    std::unique_lock lock(log->mu);
    log->changed.wait_for(lock, 120s, [&] { return log->token_times.size() > seen || log->finished; });
    if (log->token_times.size() > seen)
      t.pause_ms = std::chrono::duration<double, std::milli>(log->token_times[seen] - t0).count();
    log->changed.wait_for(lock, 120s, [&] { return log->finished; });
    if (!log->error.empty())
      throw std::runtime_error("the request failed: " + log->error);
  }
  drainer.join();
  std::sort(gaps.begin(), gaps.end());
  t.gap_ms = gaps.empty() ? 0 : gaps[gaps.size() / 2];
  const auto ca_ = node_a->counters(), cb = node_b->counters();
  t.migrated = ca_.migrated + cb.migrated >= 1 &&
               (method == cluster::migration_method::recompute || ca_.kv_imports + cb.kv_imports >= 1);
  return t;
}

int run_bench_migrate(const bench_migrate_options& o) {
  spdlog::set_level(spdlog::level::err); // nodes torn down after each trial log lost peers
  const model_config mc = load_model_config(o.model);
  std::printf("bench-migrate: %s (%lld layers, %lld KV heads x %lld), CPU backend, %d thread(s), 2 nodes on "
              "loopback, median of %d\n",
              o.model.c_str(), (long long)mc.num_hidden_layers, (long long)mc.num_key_value_heads,
              (long long)mc.head_dim, o.threads, o.repeats);
  std::printf("%8s  %10s  %12s  %16s  %14s\n", "context", "method", "pause ms", "ms per 1k tokens", "token gap ms");
  for (int32_t context : o.contexts)
    for (auto method : {cluster::migration_method::recompute, cluster::migration_method::kv}) {
      std::vector<double> pauses, gaps;
      for (int32_t i = 0; i < o.repeats; ++i) {
        trial t = run_trial(o, context, method);
        if (!t.migrated)
          throw std::runtime_error("the request was not migrated by " + std::string(cluster::to_string(method)));
        pauses.push_back(t.pause_ms);
        gaps.push_back(t.gap_ms);
      }
      std::sort(pauses.begin(), pauses.end());
      std::sort(gaps.begin(), gaps.end());
      const double p = pauses[pauses.size() / 2];
      std::printf("%8d  %10s  %12.1f  %16.1f  %14.1f\n", context, cluster::to_string(method), p,
                  p * 1000.0 / context, gaps[gaps.size() / 2]);
      std::fflush(stdout);
    }
  return 0;
}

const command_registrar registrar{
    "bench-migrate", "Migration time per 1,000 tokens of context: KV shipping vs recomputation (two in-process nodes)",
    [](CLI::App& app) -> std::function<int()> {
      auto o = std::make_shared<bench_migrate_options>();
      app.add_option("--model", o->model, "model folder (CPU backend)")->capture_default_str();
      app.add_option("--contexts", o->contexts, "prompt lengths in tokens")->capture_default_str()->delimiter(',');
      app.add_option("--repeats", o->repeats, "trials per point (median)")->capture_default_str();
      app.add_option("--cpu-threads", o->threads, "CPU backend threads per node")->capture_default_str();
      return [o] { return run_bench_migrate(*o); };
    }};

} // namespace
} // namespace actorserve::cli
