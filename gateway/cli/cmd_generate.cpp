// `actorserve generate`: runs one prompt (token ids) directly on the CPU backend, prefill in
// chunks then one decode step per token, and prints the generated ids as JSON.
#include "gateway/cli/command.hpp"

#include "model/cpu_backend.hpp"
#include "model/error.hpp"
#include "model/generate_loop.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>
#include <sstream>

namespace actorserve::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos || v < 0 || v > INT32_MAX)
      throw model_error("--prompt-ids: '" + item + "' is not a token id (comma-separated non-negative integers)");
    ids.push_back(int32_t(v));
  }
  if (ids.empty())
    throw model_error("--prompt-ids is empty");
  return ids;
}

struct generate_args {
  std::string model_dir;
  std::string prompt_ids;
  generation_options gen;
  int32_t block_size = 16;
  int32_t threads = 0;
};

int run_generate(const generate_args& a) {
  const std::vector<int32_t> prompt = parse_ids(a.prompt_ids);
  cpu_backend_options o;
  o.block_size = a.block_size;
  o.max_kv_tokens = int64_t(prompt.size()) + a.gen.max_tokens;
  o.num_threads = a.threads;
  auto backend = make_cpu_backend(a.model_dir, o);
  const generation_result r = generate_sequence(*backend, prompt, a.gen);
  nlohmann::json out;
  out["token_ids"] = r.token_ids;
  std::vector<float> logprobs;
  for (const auto& s : r.samples)
    logprobs.push_back(s.logprob);
  out["logprobs"] = logprobs;
  out["finish_reason"] = r.finish_reason;
  out["prompt_tokens"] = prompt.size();
  out["prefill_seconds"] = r.prefill_seconds;
  out["decode_seconds"] = r.decode_seconds;
  std::cout << out.dump() << "\n";
  return 0;
}

const command_registrar registrar{
    "generate", "Generate tokens for one prompt of token ids on the CPU backend and print them as JSON",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<generate_args>();
      app.add_option("--model", a->model_dir, "model folder (config.json + safetensors)")->required();
      app.add_option("--prompt-ids", a->prompt_ids, "prompt token ids, comma-separated, e.g. 1,2,3")->required();
      app.add_option("--max-tokens", a->gen.max_tokens, "tokens to generate")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--temperature", a->gen.sampling.temperature, "0 for greedy")->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--top-p", a->gen.sampling.top_p, "nucleus sampling mass, (0, 1]")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
      app.add_option("--top-k", a->gen.sampling.top_k, "keep the k best tokens; 0 disables")->capture_default_str();
      app.add_option("--min-p", a->gen.sampling.min_p, "drop tokens below min_p * the best probability")->capture_default_str()->check(CLI::Range(0.0, 1.0));
      app.add_option("--repetition-penalty", a->gen.sampling.repetition_penalty, "HF rule, > 0")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--presence-penalty", a->gen.sampling.presence_penalty, "OpenAI rule")->capture_default_str()->check(CLI::Range(-2.0, 2.0));
      app.add_option("--frequency-penalty", a->gen.sampling.frequency_penalty, "OpenAI rule")->capture_default_str()->check(CLI::Range(-2.0, 2.0));
      app.add_option("--seed", a->gen.sampling.seed, "sampling seed")->capture_default_str();
      app.add_flag("--ignore-eos", a->gen.ignore_eos, "keep generating after an end-of-sequence token");
      app.add_option("--block-size", a->block_size, "KV cache block size in tokens")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--chunk-size", a->gen.chunk_size, "prompt tokens per prefill step")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--threads", a->threads, "threads (0: all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
      return [a] { return run_generate(*a); };
    }};

} // namespace
} // namespace actorserve::cli
