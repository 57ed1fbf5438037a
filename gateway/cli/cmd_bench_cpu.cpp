// `actorserve bench-cpu`: tokens/s of the CPU backend on a model folder: prefill of one prompt
// (in chunks), decode at batch 1, and decode at batch B (B sequences, one token each per step).
#include "gateway/cli/command.hpp"

#include "model/cpu_backend.hpp"
#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>
#include <time.h>

namespace actorserve::cli {
namespace {

struct bench_args {
  std::string model_dir;
  int32_t prompt_len = 128;
  int32_t decode_tokens = 32;
  int32_t batch = 8;
  int32_t chunk_size = 512;
  int32_t threads = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds used by all threads of the process: on a machine shared with other work, tokens
// per CPU second says what the code does, tokens per wall second what the machine gave it.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

struct rate {
  double per_wall_s = 0.0;
  double per_cpu_s = 0.0;
};

rate measure(int64_t tokens, std::chrono::steady_clock::time_point wall0, double cpu0) {
  return {double(tokens) / seconds_since(wall0), double(tokens) / (process_cpu_seconds() - cpu0)};
}

int run_bench(const bench_args& a) {
  const int32_t block_size = 16;
  const int32_t blocks_per_seq = (a.prompt_len + a.decode_tokens + block_size - 1) / block_size;
  cpu_backend_options o;
  o.block_size = block_size;
  o.num_blocks = blocks_per_seq * (a.batch + 1);
  o.num_threads = a.threads;
  auto t_load = std::chrono::steady_clock::now();
  auto b = make_cpu_backend(a.model_dir, o);
  const double load_s = seconds_since(t_load);
  const model_config& c = b->config();
  const int32_t threads = a.threads > 0 ? a.threads : int32_t(std::max(1u, std::thread::hardware_concurrency()));

  sequence_sampling_state greedy;
  greedy.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  uint64_t lcg = 12345;
  auto random_token = [&] {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return int32_t((lcg >> 33) % uint64_t(c.vocab_size));
  };
  auto table = [&](int32_t seq) {
    std::vector<int32_t> t;
    for (int32_t i = 0; i < blocks_per_seq; ++i)
      t.push_back(seq * blocks_per_seq + i);
    return t;
  };

  // Prefill sequence 0 in chunks.
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < a.prompt_len; ++i)
    prompt.push_back(random_token());
  auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = process_cpu_seconds();
  for (int32_t done = 0; done < a.prompt_len;) {
    step_batch step;
    step_sequence s;
    s.num_computed_tokens = done;
    s.num_new_tokens = std::min(a.chunk_size, a.prompt_len - done);
    s.needs_logits = done + s.num_new_tokens == a.prompt_len;
    s.block_table = table(0);
    step.add(s, prompt.data() + done);
    b->execute(step, s.needs_logits ? std::vector<const sequence_sampling_state*>{&greedy}
                                    : std::vector<const sequence_sampling_state*>{},
               out);
    done += s.num_new_tokens;
  }
  const rate prefill = measure(a.prompt_len, t0, cpu0);

  // The other sequences share the prompt: copy its blocks instead of prefilling again.
  std::vector<block_copy> copies;
  for (int32_t seq = 1; seq <= a.batch; ++seq)
    for (int32_t i = 0; i < (a.prompt_len + block_size - 1) / block_size; ++i)
      copies.push_back({table(0)[size_t(i)], table(seq)[size_t(i)]});
  b->copy_blocks(copies);

  // Decode `decode_tokens` steps for sequences [first, first + count).
  auto decode = [&](int32_t first, int32_t count) {
    std::vector<int32_t> next(static_cast<size_t>(count));
    for (auto& t : next)
      t = random_token();
    const std::vector<const sequence_sampling_state*> sampling(size_t(count), &greedy);
    auto t1 = std::chrono::steady_clock::now();
    const double cpu1 = process_cpu_seconds();
    for (int32_t i = 0; i < a.decode_tokens; ++i) {
      step_batch step;
      for (int32_t k = 0; k < count; ++k) {
        step_sequence s;
        s.seq_id = uint64_t(first + k);
        s.num_computed_tokens = a.prompt_len + i;
        s.num_new_tokens = 1;
        s.needs_logits = true;
        s.block_table = table(first + k);
        step.add(s, &next[size_t(k)]);
      }
      b->execute(step, sampling, out);
      for (int32_t k = 0; k < count; ++k)
        next[size_t(k)] = out[size_t(k)].token;
    }
    return measure(int64_t(count) * a.decode_tokens, t1, cpu1);
  };
  const rate decode1 = decode(1, 1);
  const rate decode_b = a.batch > 1 ? decode(1, a.batch) : decode1;

  const int64_t params = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2) +
                         c.num_hidden_layers * (c.hidden_size * (c.q_size() + 2 * c.kv_size()) +
                                                c.q_size() * c.hidden_size + 3 * c.hidden_size * c.intermediate_size);
  std::printf("model %s: %s, hidden %lld, %lld layers, %lld heads (%lld kv), mlp %lld, vocab %lld, %.1f M params\n",
              a.model_dir.c_str(), std::string(arch_name(c.arch)).c_str(), (long long)c.hidden_size,
              (long long)c.num_hidden_layers, (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
              (long long)c.intermediate_size, (long long)c.vocab_size, double(params) / 1e6);
  std::printf("load %.2f s, %d threads; tokens/s (tokens per CPU-second in parentheses):\n"
              "  prefill %d tokens (chunks of %d): %.1f (%.1f)\n  decode batch 1: %.1f (%.1f)\n"
              "  decode batch %d: %.1f (%.1f)   [decode context %d..%d]\n",
              load_s, threads, a.prompt_len, a.chunk_size, prefill.per_wall_s, prefill.per_cpu_s, decode1.per_wall_s,
              decode1.per_cpu_s, a.batch, decode_b.per_wall_s, decode_b.per_cpu_s, a.prompt_len,
              a.prompt_len + a.decode_tokens);
  nlohmann::json j{{"model", a.model_dir},
                   {"params", params},
                   {"threads", threads},
                   {"load_s", load_s},
                   {"prompt_len", a.prompt_len},
                   {"prefill_tokens_per_s", prefill.per_wall_s},
                   {"prefill_tokens_per_cpu_s", prefill.per_cpu_s},
                   {"decode_batch1_tokens_per_s", decode1.per_wall_s},
                   {"decode_batch1_tokens_per_cpu_s", decode1.per_cpu_s},
                   {"batch", a.batch},
                   {"decode_batch_tokens_per_s", decode_b.per_wall_s},
                   {"decode_batch_tokens_per_cpu_s", decode_b.per_cpu_s}};
  std::cout << j.dump() << "\n";
  return 0;
}

const command_registrar registrar{
    "bench-cpu", "Measure CPU backend tokens/s: prefill, decode at batch 1 and at batch B",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<bench_args>();
      app.add_option("--model", a->model_dir, "model folder (config.json + safetensors)")->required();
      app.add_option("--prompt-len", a->prompt_len, "prompt tokens prefilled")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--decode-tokens", a->decode_tokens, "decode steps timed per batch size")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--batch", a->batch, "sequences in the batched decode")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--chunk-size", a->chunk_size, "prompt tokens per prefill step")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--threads", a->threads, "threads (0: all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
      return [a] { return run_bench(*a); };
    }};

} // namespace
} // namespace actorserve::cli
