// `actorserve generate`: offline generation through the actor engine on the CPU backend.
//   --prompts FILE   one JSON object per line ({"prompt": "..."} or {"prompt_ids": [...]}, plus
//                    optional max_tokens, temperature, top_p, top_k, min_p, seed, stop, n,
//                    ignore_eos, logprobs); all submitted at once; one JSON line per request with
//                    index, text, token_ids and finish_reason (and "choices" when n > 1).
//   --prompt-ids IDS one prompt of token ids; prints its ids, logprobs and timings as JSON.
#include "gateway/cli/command.hpp"

#include "actors/engine.hpp"
#include "actors/tokenizer_detokenizer.hpp"
#include "gateway/model_location.hpp"
#include "model/cpu_backend.hpp"
#include "model/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
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
  std::string prompts_file;
  int32_t max_tokens = 16;
  sampling_params sampling;
  bool has_seed = false;
  bool ignore_eos = false;
  int32_t block_size = 16;
  int32_t chunk_size = 512;     // max_num_batched_tokens
  int32_t max_num_seqs = 256;
  int64_t max_kv_tokens = 0;    // 0: the backend's default
  std::string preemption = "recompute";
  bool no_prefix_caching = false;
  int32_t threads = 0;
};

// A request as read from one line of the prompts file, before tokenization.
generate_request parse_prompt_line(const nlohmann::json& j, const generate_args& a, const tokenizer* tok,
                                   size_t line_no) {
  auto where = [&](const std::string& what) {
    return model_error("--prompts line " + std::to_string(line_no) + ": " + what);
  };
  if (!j.is_object())
    throw where("expected a JSON object");
  generate_request r;
  r.max_tokens = a.max_tokens;
  r.sampling = a.sampling;
  r.has_seed = a.has_seed;
  r.ignore_eos = a.ignore_eos;
  try {
    if (j.contains("prompt_ids")) {
      r.prompt_token_ids = j.at("prompt_ids").get<std::vector<int32_t>>();
    } else if (j.contains("prompt")) {
      if (!tok)
        throw where("a text prompt needs tokenizer.json in the model folder (or give prompt_ids)");
      bool add_special = j.value("add_special_tokens", true);
      auto ids = tok->encode(j.at("prompt").get<std::string>(), add_special);
      r.prompt_token_ids.assign(ids.begin(), ids.end());
    } else {
      throw where("needs \"prompt\" or \"prompt_ids\"");
    }
    r.max_tokens = j.value("max_tokens", r.max_tokens);
    r.min_tokens = j.value("min_tokens", r.min_tokens);
    r.sampling.temperature = j.value("temperature", r.sampling.temperature);
    r.sampling.top_p = j.value("top_p", r.sampling.top_p);
    r.sampling.top_k = j.value("top_k", r.sampling.top_k);
    r.sampling.min_p = j.value("min_p", r.sampling.min_p);
    r.sampling.repetition_penalty = j.value("repetition_penalty", r.sampling.repetition_penalty);
    r.sampling.presence_penalty = j.value("presence_penalty", r.sampling.presence_penalty);
    r.sampling.frequency_penalty = j.value("frequency_penalty", r.sampling.frequency_penalty);
    r.sampling.logprobs = j.value("logprobs", r.sampling.logprobs);
    if (j.contains("seed")) {
      r.sampling.seed = j.at("seed").get<uint64_t>();
      r.has_seed = true;
    }
    if (j.contains("stop")) {
      const auto& s = j.at("stop");
      if (s.is_string())
        r.stop = {s.get<std::string>()};
      else
        r.stop = s.get<std::vector<std::string>>();
    }
    r.stop_token_ids = j.value("stop_token_ids", r.stop_token_ids);
    r.n = j.value("n", r.n);
    r.ignore_eos = j.value("ignore_eos", r.ignore_eos);
    r.skip_special_tokens = j.value("skip_special_tokens", r.skip_special_tokens);
  } catch (const nlohmann::json::exception& e) {
    throw where(std::string("bad field: ") + e.what());
  }
  return r;
}

struct engine_run {
  std::unique_ptr<engine> eng;
  std::optional<tokenizer> tok;
};

engine_run start_engine(const generate_args& a) {
  engine_run run;
  if (std::filesystem::exists(std::filesystem::path(a.model_dir) / "tokenizer.json"))
    run.tok = tokenizer::from_dir(a.model_dir);
  engine_config c;
  c.max_num_seqs = a.max_num_seqs;
  c.max_num_batched_tokens = a.chunk_size;
  c.enable_prefix_caching = !a.no_prefix_caching;
  if (a.preemption == "swap")
    c.preemption = preemption_mode::swap;
  else if (a.preemption != "recompute")
    throw model_error("--preemption-mode must be recompute or swap");
  c.max_waiting_requests = 1 << 30; // offline: everything is queued at once
  cpu_backend_options o;
  o.block_size = a.block_size;
  o.max_kv_tokens = a.max_kv_tokens;
  o.num_host_blocks = c.preemption == preemption_mode::swap ? 1024 : 0;
  o.num_threads = a.threads;
  std::string dir = a.model_dir;
  run.eng = engine::start(c, [dir, o] { return make_cpu_backend(dir, o); },
                          run.tok ? make_detokenizer(*run.tok) : nullptr);
  return run;
}

/// Submits every request, waits for all, and returns the collected outputs by request index.
struct collected_choice {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<float> logprobs;
  std::string finish_reason;
};
struct collected_request {
  std::map<int32_t, collected_choice> choices;
  std::string error;
  request_metrics metrics;
  bool finished = false;
};

std::vector<collected_request> run_all(engine& eng, std::vector<generate_request>& reqs) {
  output_queue queue;
  std::map<uint64_t, size_t> index_of;
  std::vector<collected_request> out(reqs.size());
  size_t pending = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].id = uint64_t(i + 1);
    submit_result res = eng.submit(reqs[i], queue.sink());
    if (!res) {
      out[i].error = res.message;
      out[i].finished = true;
      continue;
    }
    index_of[res.request_id] = i;
    ++pending;
  }
  while (pending > 0) {
    auto o = queue.pop(std::chrono::milliseconds(1000));
    if (!o)
      continue;
    collected_request& c = out[index_of.at(o->request_id)];
    for (auto& d : o->choices) {
      collected_choice& ch = c.choices[d.index];
      ch.token_ids.insert(ch.token_ids.end(), d.token_ids.begin(), d.token_ids.end());
      ch.text += d.text;
      for (const auto& lp : d.logprobs)
        ch.logprobs.push_back(lp.logprob);
      if (d.finish != finish_reason::none)
        ch.finish_reason = to_string(d.finish);
    }
    if (o->error != engine_errc::none)
      c.error = o->error_message;
    if (o->finished) {
      c.finished = true;
      c.metrics = o->metrics;
      --pending;
    }
  }
  return out;
}

// JSON numbers cannot be -inf: such logprobs print as null.
nlohmann::json logprobs_json(const std::vector<float>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (float v : values)
    out.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
  return out;
}

int run_prompts_file(const generate_args& a) {
  std::ifstream in(a.prompts_file);
  if (!in)
    throw model_error("--prompts: cannot read " + a.prompts_file);
  engine_run run = start_engine(a);
  std::vector<generate_request> reqs;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw model_error("--prompts line " + std::to_string(line_no) + ": not JSON: " + e.what());
    }
    reqs.push_back(parse_prompt_line(j, a, run.tok ? &*run.tok : nullptr, line_no));
  }
  if (reqs.empty())
    throw model_error("--prompts: " + a.prompts_file + " holds no requests");
  auto start = std::chrono::steady_clock::now();
  auto results = run_all(*run.eng, reqs);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t generated = 0;
  int failures = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    nlohmann::json j;
    j["index"] = i;
    if (!r.error.empty()) {
      j["error"] = r.error;
      ++failures;
    }
    auto choice_json = [](const collected_choice& c) {
      nlohmann::json cj;
      cj["text"] = c.text;
      cj["token_ids"] = c.token_ids;
      cj["finish_reason"] = c.finish_reason;
      if (!c.logprobs.empty())
        cj["logprobs"] = logprobs_json(c.logprobs);
      return cj;
    };
    if (auto it = r.choices.find(0); it != r.choices.end())
      j.update(choice_json(it->second));
    if (r.choices.size() > 1) {
      j["choices"] = nlohmann::json::array();
      for (const auto& [index, c] : r.choices) {
        auto cj = choice_json(c);
        cj["index"] = index;
        j["choices"].push_back(cj);
      }
    }
    for (const auto& [index, c] : r.choices)
      generated += int64_t(c.token_ids.size());
    std::cout << j.dump() << "\n";
  }
  std::cerr << "generate: " << reqs.size() << " requests, " << generated << " tokens in " << seconds << " s ("
            << (seconds > 0 ? double(generated) / seconds : 0.0) << " tokens/s), "
            << run.eng->stats().num_preemptions << " preemptions\n";
  return failures ? 1 : 0;
}

int run_prompt_ids(const generate_args& a) {
  generate_request r;
  r.prompt_token_ids = parse_ids(a.prompt_ids);
  r.max_tokens = a.max_tokens;
  r.sampling = a.sampling;
  r.sampling.logprobs = std::max(0, r.sampling.logprobs);
  r.has_seed = true; // this mode has always used --seed (default 0)
  r.ignore_eos = a.ignore_eos;
  r.detokenize = false;
  generate_args b = a;
  if (b.max_kv_tokens == 0)
    b.max_kv_tokens = int64_t(r.prompt_token_ids.size()) + a.max_tokens + 2 * a.block_size;
  engine_run run = start_engine(b);
  std::vector<generate_request> reqs{r};
  auto results = run_all(*run.eng, reqs);
  const auto& res = results[0];
  if (!res.error.empty())
    throw model_error(res.error);
  const collected_choice& c = res.choices.at(0);
  nlohmann::json out;
  out["token_ids"] = c.token_ids;
  out["logprobs"] = logprobs_json(c.logprobs);
  out["finish_reason"] = c.finish_reason;
  out["prompt_tokens"] = r.prompt_token_ids.size();
  out["prefill_seconds"] = res.metrics.ttft_s;
  out["decode_seconds"] = res.metrics.e2e_s - res.metrics.ttft_s;
  std::cout << out.dump() << "\n";
  return 0;
}

const command_registrar registrar{
    "generate", "Generate offline through the actor engine on the CPU backend (--prompts FILE or --prompt-ids)",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<generate_args>();
      app.add_option("--model", a->model_dir,
                     "model folder (config.json + safetensors [+ tokenizer.json]); default: the bundled demo model");
      auto* ids = app.add_option("--prompt-ids", a->prompt_ids, "one prompt of token ids, comma-separated, e.g. 1,2,3");
      auto* file = app.add_option("--prompts", a->prompts_file, "JSON lines file of requests, all submitted at once");
      ids->excludes(file);
      app.add_option("--max-tokens", a->max_tokens, "tokens to generate (default for --prompts lines)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--temperature", a->sampling.temperature, "0 for greedy")->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--top-p", a->sampling.top_p, "nucleus sampling mass, (0, 1]")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
      app.add_option("--top-k", a->sampling.top_k, "keep the k best tokens; 0 disables")->capture_default_str();
      app.add_option("--min-p", a->sampling.min_p, "drop tokens below min_p * the best probability")->capture_default_str()->check(CLI::Range(0.0, 1.0));
      app.add_option("--repetition-penalty", a->sampling.repetition_penalty, "HF rule, > 0")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--presence-penalty", a->sampling.presence_penalty, "OpenAI rule")->capture_default_str()->check(CLI::Range(-2.0, 2.0));
      app.add_option("--frequency-penalty", a->sampling.frequency_penalty, "OpenAI rule")->capture_default_str()->check(CLI::Range(-2.0, 2.0));
      auto* seed = app.add_option("--seed", a->sampling.seed, "sampling seed (default for --prompts lines: random)")->capture_default_str();
      app.add_flag("--ignore-eos", a->ignore_eos, "keep generating after an end-of-sequence token");
      app.add_option("--block-size", a->block_size, "KV cache block size in tokens")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--chunk-size,--max-num-batched-tokens", a->chunk_size, "tokens per step (prefill chunks + decodes)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-num-seqs", a->max_num_seqs, "sequences per step")->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-kv-tokens", a->max_kv_tokens, "KV cache size in tokens (0: backend default)")->capture_default_str();
      app.add_option("--preemption-mode", a->preemption, "recompute or swap")->capture_default_str();
      app.add_flag("--no-enable-prefix-caching", a->no_prefix_caching, "turn the prefix cache off");
      app.add_option("--threads", a->threads, "threads (0: all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
      return [a, seed] {
        a->has_seed = seed->count() > 0;
        if (a->model_dir.empty())
          a->model_dir = gateway::default_model_dir().string();
        if (!a->prompts_file.empty())
          return run_prompts_file(*a);
        if (!a->prompt_ids.empty())
          return run_prompt_ids(*a);
        throw model_error("give --prompts FILE or --prompt-ids IDS");
      };
    }};

} // namespace
} // namespace actorserve::cli
