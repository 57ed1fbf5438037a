// actorserve_gpu_bench: the CUDA backend's benchmarks and the comparison dump for transformers.
//   decode     --model DIR [--contexts 128,4096] [--steps 128]          single-stream ms/token
//   throughput --model DIR --num-prompts N --input-len I --output-len O  offline tokens/s
//   dump       --model DIR --prompts FILE --steps 16 --out FILE          greedy tokens + logits
// Each prints one JSON object on stdout (logs go to stderr) and writes it to --json if given.
#include "gpu/bench/bench_common.hpp"
#include "gpu/cuda_backend.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <unordered_map>

using namespace actorserve;
using namespace actorserve::gpu::bench;
using json = nlohmann::json;

namespace {

cuda_backend_options backend_options(const args& a) {
  cuda_backend_options o;
  o.dtype = a.str("dtype", "auto");
  o.gpu_memory_utilization = a.real("gpu-memory-utilization", 0.90);
  o.max_num_seqs = int32_t(a.num("max-num-seqs", 256));
  o.max_num_batched_tokens = int32_t(a.num("max-num-batched-tokens", 8192));
  o.max_model_len = int32_t(a.num("max-model-len", 8192));
  o.cuda_graphs = a.num("no-graphs", 0) == 0;
  o.quantization = a.str("quantization", "none");
  return o;
}

json startup_json(const gpu::cuda_backend& b) {
  const auto& s = b.startup();
  return {{"weights_s", s.weights_seconds}, {"graph_capture_s", s.graph_capture_seconds}, {"total_s", s.total_seconds},
          {"weight_bytes", s.weight_bytes}, {"kv_cache_bytes", s.kv_cache_bytes}, {"num_graphs", s.num_graphs},
          {"dtype", s.compute_dtype}, {"quantization", s.quantization}, {"kv_blocks", b.kv_shape().num_blocks}};
}

/// Allocates KV blocks from a free list: the benchmark's stand-in for the block manager.
class block_allocator {
public:
  explicit block_allocator(int32_t n) {
    for (int32_t i = n - 1; i >= 0; --i)
      free_.push_back(i);
  }
  bool take(size_t n, std::vector<int32_t>& out) {
    if (free_.size() < n)
      return false;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(free_.back());
      free_.pop_back();
    }
    return true;
  }
  void give(std::vector<int32_t>& blocks) {
    free_.insert(free_.end(), blocks.begin(), blocks.end());
    blocks.clear();
  }
  size_t available() const { return free_.size(); }

private:
  std::vector<int32_t> free_;
};

struct request {
  uint64_t id = 0;
  std::vector<int32_t> tokens; // prompt, then generated
  int32_t prompt_len = 0;
  int32_t computed = 0;
  int32_t max_tokens = 0;
  std::vector<int32_t> blocks;
  sequence_sampling_state sampling;
  double first_token_s = 0;
};

/// Continuous batching with chunked prefill under a token budget, the vLLM v1 way: running
/// sequences first (decodes, then prefill chunks), then waiting ones; KV blocks allocated as
/// sequences grow; when a decode finds no free block, the most recently admitted sequence is
/// preempted (its blocks freed, recomputed later from its tokens). Returns the step count.
/// Wall time of the steps with a prefill chunk and of the decode-only ones (graph replays).
struct step_times {
  double prefill_ms = 0, decode_ms = 0;
  int64_t prefill_steps = 0, decode_steps = 0;
};

int64_t run_scheduler(backend& b, std::deque<request>& waiting, std::vector<request>& finished, int32_t max_seqs,
                      int32_t token_budget, std::vector<double>* step_ms = nullptr, int64_t* preemptions = nullptr,
                      step_times* times = nullptr) {
  const int32_t bs = b.kv_shape().block_size;
  block_allocator blocks(b.kv_shape().num_blocks);
  const size_t watermark = size_t(b.kv_shape().num_blocks / 100);
  std::vector<request> running;
  int64_t steps = 0;
  std::vector<sampled_token> out;
  const double start = now_seconds();
  auto blocks_for = [&](size_t tokens) { return (tokens + size_t(bs) - 1) / size_t(bs); };
  while (!waiting.empty() || !running.empty()) {
    // Admit while the whole current sequence (plus one token) fits above the watermark.
    while (!waiting.empty() && int32_t(running.size()) < max_seqs) {
      request& r = waiting.front();
      const size_t need = blocks_for(r.tokens.size() + 1);
      if (blocks.available() < need + (running.empty() ? 0 : watermark))
        break;
      blocks.take(need - r.blocks.size(), r.blocks);
      running.push_back(std::move(r));
      waiting.pop_front();
    }
    if (running.empty())
      throw std::runtime_error("a request needs more KV blocks than the cache has");
    // Every decode needs a block for its new token; preempt from the back when none is free.
    for (size_t i = 0; i < running.size(); ++i) {
      request& r = running[i];
      const size_t need = blocks_for(r.tokens.size());
      while (r.blocks.size() < need && !blocks.take(1, r.blocks)) {
        request& victim = running.back();
        blocks.give(victim.blocks);
        victim.computed = 0;
        if (preemptions)
          ++*preemptions;
        waiting.push_front(std::move(victim));
        running.pop_back();
        if (i >= running.size())
          break;
      }
    }
    step_batch step;
    std::vector<const sequence_sampling_state*> sampling;
    std::vector<size_t> sampled_index;
    int32_t budget = token_budget;
    for (int pass = 0; pass < 2; ++pass)
      for (size_t i = 0; i < running.size() && budget > 0; ++i) {
        request& r = running[i];
        const int32_t left = int32_t(r.tokens.size()) - r.computed;
        if ((pass == 0) != (left == 1) || left <= 0)
          continue;
        step_sequence s;
        s.seq_id = r.id;
        s.num_computed_tokens = r.computed;
        s.num_new_tokens = std::min(left, budget);
        s.needs_logits = r.computed + s.num_new_tokens == int32_t(r.tokens.size());
        const size_t used = blocks_for(size_t(s.context_len()));
        s.block_table.assign(r.blocks.begin(), r.blocks.begin() + ptrdiff_t(used));
        step.add(s, r.tokens.data() + r.computed);
        budget -= s.num_new_tokens;
        if (s.needs_logits) {
          sampling.push_back(&r.sampling);
          sampled_index.push_back(i);
        }
      }
    const double t0 = now_seconds();
    b.execute(step, sampling, out);
    const double ms = (now_seconds() - t0) * 1e3;
    if (step_ms)
      step_ms->push_back(ms);
    if (times) {
      const bool decode_only = std::all_of(step.seqs.begin(), step.seqs.end(),
                                           [](const step_sequence& q) { return q.num_new_tokens == 1; });
      (decode_only ? times->decode_ms : times->prefill_ms) += ms;
      ++(decode_only ? times->decode_steps : times->prefill_steps);
    }
    ++steps;
    std::unordered_map<uint64_t, size_t> index_of;
    for (size_t i = 0; i < running.size(); ++i)
      index_of[running[i].id] = i;
    for (const auto& s : step.seqs)
      running[index_of.at(s.seq_id)].computed += s.num_new_tokens;
    for (size_t j = 0; j < sampled_index.size(); ++j) {
      request& r = running[sampled_index[j]];
      r.tokens.push_back(out[j].token);
      r.sampling.output_token_ids.push_back(out[j].token);
      if (r.first_token_s == 0)
        r.first_token_s = now_seconds() - start;
    }
    for (size_t i = 0; i < running.size();) {
      request& r = running[i];
      if (int32_t(r.tokens.size()) - r.prompt_len >= r.max_tokens) {
        blocks.give(r.blocks);
        finished.push_back(std::move(r));
        running.erase(running.begin() + ptrdiff_t(i));
      } else {
        ++i;
      }
    }
  }
  return steps;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int32_t len, int64_t vocab) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (auto& t : p)
    t = int32_t(rng() % uint32_t(vocab));
  return p;
}

/// One sequence in blocks 0..: prefill `context` random tokens in chunks, then `steps` greedy
/// decode steps; returns the wall milliseconds of each decode step.
std::vector<double> single_stream(backend& b, std::mt19937& rng, int32_t context, int steps, int32_t chunk) {
  const int32_t bs = b.kv_shape().block_size;
  std::vector<int32_t> tokens = random_prompt(rng, context, b.config().vocab_size);
  sequence_sampling_state st;
  st.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  std::vector<double> ms;
  int32_t computed = 0;
  auto run = [&](int32_t n) {
    step_batch step;
    step_sequence s;
    s.seq_id = 1;
    s.num_computed_tokens = computed;
    s.num_new_tokens = n;
    s.needs_logits = computed + n == int32_t(tokens.size());
    for (int32_t k = 0; k * bs < s.context_len(); ++k)
      s.block_table.push_back(k);
    step.add(s, tokens.data() + computed);
    std::vector<const sequence_sampling_state*> sampling;
    if (s.needs_logits)
      sampling.push_back(&st);
    const double t0 = now_seconds();
    b.execute(step, sampling, out);
    const double dt = (now_seconds() - t0) * 1e3;
    computed += n;
    if (s.needs_logits) {
      tokens.push_back(out[0].token);
      st.output_token_ids.push_back(out[0].token);
    }
    return dt;
  };
  while (computed < context)
    run(std::min(chunk, context - computed));
  for (int i = 0; i < steps; ++i)
    ms.push_back(run(1));
  return ms;
}

json cmd_decode(const args& a) {
  cuda_backend_options o = backend_options(a);
  o.max_num_seqs = int32_t(a.num("max-num-seqs", 8));
  o.max_num_batched_tokens = int32_t(a.num("max-num-batched-tokens", 2048));
  auto b = std::make_unique<gpu::cuda_backend>(a.str("model"), o);
  const int steps = int(a.num("steps", 128));
  std::mt19937 rng(1);
  json result = {{"startup", startup_json(*b)}};
  for (long context : a.list("contexts", {128, 4096})) {
    for (int graphs = 1; graphs >= 0; --graphs) {
      b->set_graphs_enabled(graphs == 1);
      std::vector<double> ms = single_stream(*b, rng, int32_t(context), steps, o.max_num_batched_tokens);
      std::sort(ms.begin(), ms.end());
      const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
      result["runs"].push_back({{"context", context}, {"graphs", graphs == 1},
                                {"median_ms_per_token", ms[ms.size() / 2]}, {"mean_ms_per_token", mean},
                                {"p90_ms", ms[ms.size() * 9 / 10]}, {"steps", ms.size()}});
    }
    b->set_graphs_enabled(true);
    // Step time by kernel group (eager, CUDA events between groups) over decode steps only:
    // the profile of the prefill is subtracted by profiling a prefill-only run first.
    const int profiled = 32;
    b->set_profiling(true);
    b->reset_profile();
    single_stream(*b, rng, int32_t(context), 0, o.max_num_batched_tokens);
    std::map<std::string, double> prefill_only;
    for (const auto& [name, total] : b->profile())
      prefill_only[name] = total;
    b->reset_profile();
    std::vector<double> ms = single_stream(*b, rng, int32_t(context), profiled, o.max_num_batched_tokens);
    b->set_profiling(false);
    json groups = json::object();
    double gpu_total = 0;
    for (const auto& [name, total] : b->profile())
      if (name != "steps") {
        const double per_step = (total - prefill_only[name]) / profiled;
        groups[name] = per_step;
        gpu_total += per_step;
      }
    const double wall = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
    result["profile"].push_back({{"context", context}, {"ms_per_step_by_group", groups},
                                 {"gpu_ms_per_step", gpu_total}, {"wall_ms_per_step_eager_profiled", wall}});
  }
  return result;
}

json cmd_throughput(const args& a) {
  cuda_backend_options o = backend_options(a);
  const int32_t input_len = int32_t(a.num("input-len", 1000)), output_len = int32_t(a.num("output-len", 1000));
  o.max_model_len = std::max<int32_t>(o.max_model_len, input_len + output_len + 16);
  auto b = std::make_unique<gpu::cuda_backend>(a.str("model"), o);
  const int64_t vocab = b->config().vocab_size;
  const int n = int(a.num("num-prompts", 512));
  std::mt19937 rng(2);
  std::deque<request> waiting;
  for (int i = 0; i < n; ++i) {
    request r;
    r.id = uint64_t(i);
    r.tokens = random_prompt(rng, input_len, vocab);
    r.prompt_len = input_len;
    r.max_tokens = output_len;
    r.sampling.params.temperature = 0.0f; // greedy, no EOS stop: fixed lengths
    waiting.push_back(std::move(r));
  }
  std::vector<request> done;
  std::vector<double> step_ms;
  const double t0 = now_seconds();
  int64_t preemptions = 0;
  step_times times;
  const int64_t steps =
      run_scheduler(*b, waiting, done, o.max_num_seqs, o.max_num_batched_tokens, &step_ms, &preemptions, &times);
  const double elapsed = now_seconds() - t0;
  int64_t out_tokens = 0;
  for (const auto& r : done)
    out_tokens += int64_t(r.tokens.size()) - r.prompt_len;
  return {{"startup", startup_json(*b)},
          {"num_prompts", n},
          {"input_len", input_len},
          {"output_len", output_len},
          {"max_num_seqs", o.max_num_seqs},
          {"max_num_batched_tokens", o.max_num_batched_tokens},
          {"elapsed_s", elapsed},
          {"steps", steps},
          {"preemptions", preemptions},
          {"mean_step_ms", std::accumulate(step_ms.begin(), step_ms.end(), 0.0) / double(std::max<size_t>(step_ms.size(), 1))},
          {"prefill_steps", times.prefill_steps},
          {"prefill_steps_s", times.prefill_ms / 1e3},
          {"decode_steps", times.decode_steps},
          {"decode_steps_s", times.decode_ms / 1e3},
          {"mean_decode_step_ms", times.decode_ms / double(std::max<int64_t>(times.decode_steps, 1))},
          {"output_tokens", out_tokens},
          {"output_tokens_per_s", double(out_tokens) / elapsed},
          {"total_tokens_per_s", double(out_tokens + int64_t(n) * input_len) / elapsed}};
}

/// Greedy generation of the prompts in --prompts (JSON list of token-id lists), all in one
/// batch; writes tokens and the logits of every step to --out (JSON) and --logits (raw f32).
json cmd_dump(const args& a) {
  cuda_backend_options o = backend_options(a);
  o.max_num_seqs = 16;
  o.max_num_batched_tokens = 4096;
  auto b = std::make_unique<gpu::cuda_backend>(a.str("model"), o);
  std::ifstream in(a.str("prompts"));
  const json prompts = json::parse(in);
  const int steps = int(a.num("steps", 16));
  std::deque<request> waiting;
  for (size_t i = 0; i < prompts.size(); ++i) {
    request r;
    r.id = i;
    r.tokens = prompts[i].get<std::vector<int32_t>>();
    r.prompt_len = int32_t(r.tokens.size());
    r.max_tokens = steps;
    r.sampling.params.temperature = 0.0f;
    waiting.push_back(std::move(r));
  }
  // Logits come from a second pass that feeds the generated tokens as prompts (teacher forced)
  // and reads the last position's logits for each prefix length, see scripts/bench_hf.py.
  std::vector<request> done;
  run_scheduler(*b, waiting, done, 16, 4096);
  std::sort(done.begin(), done.end(), [](const request& x, const request& y) { return x.id < y.id; });
  json out = {{"steps", steps}};
  std::ofstream logits_file(a.str("logits"), std::ios::binary);
  for (const auto& r : done) {
    out["tokens"].push_back(std::vector<int32_t>(r.tokens.begin() + r.prompt_len, r.tokens.end()));
    // First-step logits: a fresh one-token-of-logits prefill of the prompt.
    step_batch step;
    step_sequence s;
    s.seq_id = 1000 + r.id;
    s.num_new_tokens = r.prompt_len;
    s.needs_logits = true;
    for (int32_t k = 0; k * b->kv_shape().block_size < r.prompt_len; ++k)
      s.block_table.push_back(k);
    step.add(s, r.tokens.data());
    sequence_sampling_state st;
    st.params.temperature = 0.0f;
    std::vector<sampled_token> tok;
    std::vector<float> logits;
    b->execute(step, {&st}, tok, &logits);
    logits_file.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
  }
  out["startup"] = startup_json(*b);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  if (argc < 2) {
    std::cerr << "usage: actorserve_gpu_bench decode|throughput|dump --model DIR [options]\n";
    return 2;
  }
  try {
    const std::string cmd = argv[1];
    const args a(argc, argv, 2);
    json result;
    if (cmd == "decode")
      result = cmd_decode(a);
    else if (cmd == "throughput")
      result = cmd_throughput(a);
    else if (cmd == "dump")
      result = cmd_dump(a);
    else
      throw std::invalid_argument("unknown command " + cmd);
    result["command"] = cmd;
    std::string line;
    for (int i = 0; i < argc; ++i)
      line += (i ? " " : "") + std::string(argv[i]);
    result["argv"] = line;
    std::cout << result.dump(2) << std::endl;
    if (!a.str("json").empty())
      std::ofstream(a.str("json")) << result.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
