// `actorserve bench serve` (a load generator against a running server, like vLLM's `bench
// serve`) and `actorserve bench throughput` (the same workload offline through the engine).
#include "gateway/bench/serve_bench.hpp"
#include "gateway/bench/throughput_bench.hpp"
#include "gateway/cli/command.hpp"

#include <cmath>
#include <memory>

namespace actorserve::cli {
namespace {

using namespace actorserve::gateway::bench;

void add_dataset_options(CLI::App& app, random_dataset_options& d) {
  app.add_option("--dataset-name", [](const CLI::results_t& r) { return r.size() == 1 && r[0] == "random"; },
                 "the dataset: random (random token ids)")
      ->default_str("random");
  app.add_option("--num-prompts", d.num_prompts, "requests to send")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--random-input-len", d.input_len, "prompt tokens")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--random-output-len", d.output_len, "max_tokens of each request")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--random-range-ratio", d.range_ratio,
                 "lengths are drawn uniformly from [len * (1 - r), len * (1 + r)]")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999));
  app.add_option("--random-prefix-len", d.prefix_len, "random tokens shared by every prompt (before its own)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--seed", d.seed, "dataset and arrival seed")->capture_default_str();
}

const command_registrar registrar{
    "bench", "Benchmarks: `bench serve` against a running server, `bench throughput` offline",
    [](CLI::App& app) -> std::function<int()> {
      app.require_subcommand(1);
      auto s = std::make_shared<serve_bench_options>();
      auto rate = std::make_shared<std::string>("inf");
      auto goodput = std::make_shared<std::vector<std::string>>();
      auto percentile_metrics = std::make_shared<std::string>("ttft,tpot,itl");
      auto percentiles = std::make_shared<std::string>("99");
      CLI::App* serve = app.add_subcommand("serve", "Load a running server with the random dataset; print TTFT, "
                                                    "TPOT, ITL, E2EL and throughputs (vLLM's definitions)");
      serve->add_option("--base-url", s->base_url, "the server")->capture_default_str();
      serve->add_option("--endpoint", s->endpoint, "/v1/completions (token-id prompts) or /v1/chat/completions")
          ->capture_default_str();
      serve->add_option("--model", s->model, "model name sent in requests (default: the server's first model)");
      serve->add_option("--tokenizer", s->tokenizer,
                        "folder with tokenizer.json (default: the server's model folder from /v1/models)");
      serve->add_option("--api-key", s->api_key, "Bearer token");
      add_dataset_options(*serve, s->dataset);
      serve->add_option("--request-rate", *rate, "requests per second (Poisson arrivals), or inf: all at once")
          ->capture_default_str();
      serve->add_option("--burstiness", s->burstiness, "gamma shape of the gaps (1: Poisson)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      serve->add_option("--max-concurrency", s->max_concurrency, "requests in flight at most (0: no limit)")
          ->capture_default_str();
      serve->add_flag("--ignore-eos", s->ignore_eos, "generate exactly the output length");
      serve->add_option("--temperature", s->temperature, "sampling temperature (0: greedy)")->capture_default_str();
      serve->add_option("--goodput", *goodput, "SLOs as name:ms, e.g. --goodput ttft:500 tpot:50 e2el:5000");
      serve->add_option("--percentile-metrics", *percentile_metrics, "comma-separated: ttft,tpot,itl,e2el")
          ->capture_default_str();
      serve->add_option("--metric-percentiles", *percentiles, "comma-separated percentiles, e.g. 50,90,99")
          ->capture_default_str();
      serve->add_option("--result-file", s->result_file, "write the results as JSON here");

      auto t = std::make_shared<throughput_bench_options>();
      CLI::App* throughput =
          app.add_subcommand("throughput", "Run the random dataset through the engine in this process (no HTTP)");
      throughput->add_option("--model", t->model, "model folder (default: the bundled demo model)");
      add_dataset_options(*throughput, t->dataset);
      throughput->add_option("--device", t->backend.device, "auto, cpu or cuda")->capture_default_str();
      throughput->add_option("--dtype", t->backend.dtype, "GPU compute dtype")->capture_default_str();
      throughput->add_option("--quantization", t->backend.quantization, "none or fp8 (as serve)")
          ->capture_default_str()->check(CLI::IsMember({"none", "fp8"}));
      throughput->add_option("--max-num-seqs", t->engine.max_num_seqs, "sequences per step")->capture_default_str();
      throughput->add_option("--max-num-batched-tokens", t->engine.max_num_batched_tokens, "tokens per step")
          ->capture_default_str();
      throughput->add_option("--max-model-len", t->engine.max_model_len, "context length (0: the model's)")
          ->capture_default_str();
      throughput->add_option("--gpu-memory-utilization", t->backend.gpu_memory_utilization, "GPU memory fraction")
          ->capture_default_str();
      throughput->add_option("--kv-cache-tokens", t->backend.kv_cache_tokens, "CPU KV capacity in tokens")
          ->capture_default_str();
      throughput->add_option("--cpu-threads", t->backend.cpu_threads, "CPU backend threads (0: all)")
          ->capture_default_str();
      throughput->add_flag("--ignore-eos", t->ignore_eos, "generate exactly the output length");
      throughput->add_option("--temperature", t->temperature, "sampling temperature")->capture_default_str();
      throughput->add_option("--result-file", t->result_file, "write the results as JSON here");

      return [=]() -> int {
        if (serve->parsed()) {
          s->request_rate = *rate == "inf" ? infinite_rate : std::stod(*rate);
          s->goodput = *goodput;
          s->percentile_metrics = CLI::detail::split(*percentile_metrics, ',');
          s->metric_percentiles.clear();
          for (const std::string& p : CLI::detail::split(*percentiles, ','))
            s->metric_percentiles.push_back(std::stod(p));
          return run_serve_bench(*s);
        }
        return run_throughput_bench(*t);
      };
    }};

} // namespace
} // namespace actorserve::cli
