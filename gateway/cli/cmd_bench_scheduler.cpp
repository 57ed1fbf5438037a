// `actorserve bench-scheduler`: CPU time the scheduler policy and the kv manager spend per
// iteration (propose + capacity decision + build + apply) with many running sequences at long
// contexts, against an executor stand-in that samples one token per sequence instantly.
// A benchmark, not a test: it prints the figures (and JSON with --json).
#include "gateway/cli/command.hpp"

#include "actors/engine.hpp"
#include "actors/fake_backend.hpp"
#include "actors/cpu_time.hpp"
#include "actors/kv_manager.hpp"
#include "actors/scheduler_policy.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

namespace actorserve::cli {
namespace {

struct bench_args {
  int32_t num_seqs = 256;
  int32_t context_len = 4096;
  int32_t block_size = 16;
  int32_t max_num_batched_tokens = 0; // 0: all prompts in one step, so every sequence decodes in lockstep
  int32_t steps = 500;
  bool no_prefix_caching = false;
  bool json = false;
  bool actors = false;
};

// The executor stand-in: one token per sequence that needs logits.
step_result fake_execute(const step_plan& plan) {
  step_result r;
  r.step_id = plan.step_id;
  for (const auto& s : plan.seqs)
    if (s.needs_logits) {
      sampled_wire w;
      w.seq_id = s.seq_id;
      w.token = int32_t(2 + (s.seq_id * 31 + uint64_t(s.num_computed)) % 30000);
      r.sampled.push_back(std::move(w));
    }
  return r;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[size_t(p * double(v.size() - 1))];
}

int run_bench(const bench_args& a) {
  // Each sequence decodes `steps` tokens past its prompt and ends at context_len.
  const int32_t prompt_len = a.context_len - a.steps - 1;
  if (prompt_len < 1)
    throw std::runtime_error("--steps must be smaller than --context-len");
  scheduler_config c;
  c.max_num_seqs = a.num_seqs;
  c.max_num_batched_tokens = a.max_num_batched_tokens > 0 ? a.max_num_batched_tokens : a.num_seqs * a.context_len;
  c.max_num_partial_prefills = a.num_seqs;
  c.max_model_len = 1 << 20;
  c.block_size = a.block_size;
  c.enable_prefix_caching = !a.no_prefix_caching;
  c.eos_token_ids = {1};
  scheduler_policy policy(c);
  // Room for the prefill warm-up plus the measured steps.
  const int32_t num_blocks = a.num_seqs * ((a.context_len + 64 + a.block_size - 1) / a.block_size + 1);
  kv_manager kv(num_blocks, a.block_size, 0, c.enable_prefix_caching);
  for (int32_t i = 0; i < a.num_seqs; ++i) {
    generate_request r;
    r.id = uint64_t(i + 1);
    r.prompt_token_ids.resize(size_t(prompt_len));
    for (int32_t k = 0; k < prompt_len; ++k)
      r.prompt_token_ids[size_t(k)] = 2 + (i * 7919 + k * 31) % 30000; // distinct: no prefix hits
    r.max_tokens = 1 << 20; // never finishes while measured

    r.ignore_eos = true;
    r.has_seed = true;
    policy.add_request(r);
  }
  // Prefill everything (not measured), then measure pure decode iterations.
  for (;;) {
    auto plan = policy.build(kv.process(policy.propose()));
    policy.apply(fake_execute(plan));
    policy.take_events();
    bool all_decoding = policy.num_waiting() == 0 && policy.num_running() == a.num_seqs;
    if (all_decoding) {
      bool prefill_left = false;
      for (uint64_t id = 1; id <= uint64_t(a.num_seqs); ++id) {
        const sequence* s = policy.find_sequence(id);
        prefill_left = prefill_left || (s && s->num_computed < s->num_tokens() - 1);
      }
      if (!prefill_left)
        break;
    }
  }
  int32_t min_context = 1 << 30, max_context = 0;
  for (uint64_t id = 1; id <= uint64_t(a.num_seqs); ++id) {
    const sequence* s = policy.find_sequence(id);
    min_context = std::min(min_context, s->num_tokens());
    max_context = std::max(max_context, s->num_tokens());
  }
  std::vector<double> total_us, propose_us, kv_us, build_us, apply_us;
  int64_t tokens = 0;
  int32_t measured_steps = a.steps;
  for (int32_t step = 0; step < measured_steps; ++step) {
    int64_t t0 = thread_cpu_ns();
    capacity_request cap = policy.propose();
    int64_t t1 = thread_cpu_ns();
    capacity_reply reply = kv.process(cap);
    int64_t t2 = thread_cpu_ns();
    step_plan plan = policy.build(reply);
    int64_t t3 = thread_cpu_ns();
    step_result result = fake_execute(plan); // not counted: the executor's work
    int64_t t4 = thread_cpu_ns();
    policy.apply(result);
    auto events = policy.take_events();
    int64_t t5 = thread_cpu_ns();
    if (int32_t(plan.seqs.size()) != a.num_seqs)
      throw std::runtime_error("step " + std::to_string(step) + " ran " + std::to_string(plan.seqs.size()) +
                               " sequences, expected " + std::to_string(a.num_seqs));
    tokens += int64_t(result.sampled.size());
    propose_us.push_back((t1 - t0) * 1e-3);
    kv_us.push_back((t2 - t1) * 1e-3);
    build_us.push_back((t3 - t2) * 1e-3);
    apply_us.push_back((t5 - t4) * 1e-3);
    total_us.push_back(((t3 - t0) + (t5 - t4)) * 1e-3);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v)
      s += x;
    return v.empty() ? 0.0 : s / double(v.size());
  };
  nlohmann::json j{{"num_seqs", a.num_seqs},
                   {"context_len", a.context_len},
                   {"block_size", a.block_size},
                   {"prefix_caching", !a.no_prefix_caching},
                   {"measured_steps", measured_steps},
                   {"min_context", min_context},
                   {"max_context", max_context + measured_steps},
                   {"tokens", tokens},
                   {"mean_us", mean(total_us)},
                   {"p50_us", percentile(total_us, 0.5)},
                   {"p99_us", percentile(total_us, 0.99)},
                   {"propose_mean_us", mean(propose_us)},
                   {"kv_mean_us", mean(kv_us)},
                   {"build_mean_us", mean(build_us)},
                   {"apply_mean_us", mean(apply_us)},
                   {"goal_us", 200}};
  if (a.json) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "scheduler + kv manager CPU time per iteration, " << a.num_seqs << " running sequences at "
              << min_context << ".." << max_context + measured_steps << "-token contexts, " << measured_steps << " decode steps:\n"
              << "  mean " << j["mean_us"].get<double>() << " us, p50 " << j["p50_us"].get<double>() << " us, p99 "
              << j["p99_us"].get<double>() << " us (goal < 200 us)\n"
              << "  propose " << j["propose_mean_us"].get<double>() << " us, kv manager " << j["kv_mean_us"].get<double>()
              << " us, build " << j["build_mean_us"].get<double>() << " us, apply " << j["apply_mean_us"].get<double>()
              << " us\n";
  }
  return 0;
}

// The same workload through the real actors (scheduler, kv manager, request actors) on the fake
// backend: the scheduler actor's own CPU accounting (propose, kv manager, build, apply and the
// dispatch of token events), averaged over the decode steps only.
int run_actors_bench(const bench_args& a) {
  const int32_t prompt_len = a.context_len - a.steps - 1;
  if (prompt_len < 1)
    throw std::runtime_error("--steps must be smaller than --context-len");
  fake_backend_options o;
  o.vocab_size = 64; // a cheap sampler: the model stand-in should not dominate the run
  o.block_size = a.block_size;
  o.num_blocks = a.num_seqs * ((a.context_len + a.block_size - 1) / a.block_size + 1);
  o.max_position_embeddings = a.context_len + 16;
  engine_config c;
  c.max_num_seqs = a.num_seqs;
  c.max_num_batched_tokens = a.max_num_batched_tokens > 0 ? a.max_num_batched_tokens : a.num_seqs * a.context_len;
  c.max_num_partial_prefills = a.num_seqs;
  c.enable_prefix_caching = !a.no_prefix_caching;
  c.watermark = 0;
  auto eng = engine::start(c, [o] { return make_fake_backend(o); });
  output_queue queue;
  for (int32_t i = 0; i < a.num_seqs; ++i) {
    generate_request r;
    r.prompt_token_ids.resize(size_t(prompt_len));
    for (int32_t k = 0; k < prompt_len; ++k)
      r.prompt_token_ids[size_t(k)] = 2 + (i * 7919 + k * 31) % 62;
    r.max_tokens = a.steps + 1;
    r.ignore_eos = true;
    r.detokenize = false;
    r.sampling.temperature = 0;
    if (!eng->submit(r, queue.sink()))
      throw std::runtime_error("submit refused");
  }
  int32_t first_tokens = 0, finished = 0;
  engine_stats warm;
  while (finished < a.num_seqs) {
    auto out = queue.pop(std::chrono::seconds(60));
    if (!out)
      throw std::runtime_error("no output within 60 s");
    if (out->usage.completion_tokens == 1 && ++first_tokens == a.num_seqs)
      warm = eng->stats();
    finished += out->finished ? 1 : 0;
  }
  engine_stats end = eng->stats();
  double steps = double(end.num_steps - warm.num_steps);
  double sched_us = (end.mean_schedule_us * double(end.num_steps) - warm.mean_schedule_us * double(warm.num_steps)) / steps;
  double step_us = (end.mean_step_us * double(end.num_steps) - warm.mean_step_us * double(warm.num_steps)) / steps;
  nlohmann::json j{{"mode", "actors"},       {"num_seqs", a.num_seqs},        {"context_len", a.context_len},
                   {"decode_steps", steps}, {"schedule_mean_us", sched_us}, {"fake_execute_mean_us", step_us},
                   {"goal_us", 200}};
  if (a.json)
    std::cout << j.dump() << "\n";
  else
    std::cout << "actors: scheduler actor + kv manager actor CPU time per decode iteration, " << a.num_seqs
              << " sequences at " << prompt_len << ".." << a.context_len << " tokens: " << sched_us
              << " us (goal < 200 us; the fake model's step took " << step_us << " us)\n";
  return 0;
}

const command_registrar registrar{
    "bench-scheduler", "Measure the scheduler and KV block manager CPU time per iteration (fake executor)",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<bench_args>();
      app.add_option("--num-seqs", a->num_seqs, "running sequences")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--context-len", a->context_len, "context length reached by the last step")->capture_default_str();
      app.add_option("--block-size", a->block_size, "KV block size")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-num-batched-tokens", a->max_num_batched_tokens,
                     "token budget per step (0: all prompts in one step)")
          ->capture_default_str();
      app.add_option("--steps", a->steps, "decode steps measured")->capture_default_str()->check(CLI::Range(3, 100000));
      app.add_flag("--no-enable-prefix-caching", a->no_prefix_caching, "turn the prefix cache off");
      app.add_flag("--json", a->json, "print one JSON object");
      app.add_flag("--actors", a->actors, "run through the real actors on the fake backend");
      return [a] { return a->actors ? run_actors_bench(*a) : run_bench(*a); };
    }};

} // namespace
} // namespace actorserve::cli
