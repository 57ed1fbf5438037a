// `actorserve serve`: the OpenAI-compatible HTTP server, with vLLM's flag names where they mean
// the same thing.
#include "gateway/cli/cluster_options.hpp"
#include "gateway/cli/command.hpp"
#include "gateway/serve_app.hpp"

#include <array>
#include <cstdlib>
#include <memory>

namespace actorserve::cli {
namespace {

const command_registrar registrar{
    "serve", "Serve a model over the OpenAI API (/v1/completions, /v1/chat/completions, /metrics)",
    [](CLI::App& app) -> std::function<int()> {
      auto c = std::make_shared<gateway::serve_config>();
      auto preemption = std::make_shared<std::string>("recompute");
      auto prefix_caching = std::make_shared<bool>(true);
      if (const char* key = std::getenv("ACTORSERVE_API_KEY"))
        c->api_key = key;

      app.add_option("--model", c->model,
                     "Hugging Face model folder (config.json, safetensors, tokenizer.json); default: the bundled "
                     "demo model (models/demo), or a tiny random model made into $ACTORSERVE_CACHE/tiny");
      app.add_option("--served-model-name", c->served_model_names,
                     "name(s) clients use in `model`; the first is reported in metrics (default: the folder name, "
                     "'demo' for the demo model)");
      app.add_option("--host", c->host, "address to listen on")->capture_default_str();
      app.add_option("--port", c->port, "port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
      app.add_option("--api-key", c->api_key,
                     "require 'Authorization: Bearer <key>' on /v1/* (also from $ACTORSERVE_API_KEY)");
      app.add_option("--device", c->backend.device, "auto, cpu or cuda")->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
      app.add_option("--dtype", c->backend.dtype, "weights and activations on the GPU: auto (config.json), bfloat16, float16, "
                                          "float32; the CPU backend always computes in float32")
          ->capture_default_str()->check(CLI::IsMember({"auto", "bfloat16", "float16", "float32", "half", "float"}));
      app.add_option("--quantization", c->backend.quantization, "weight quantization: none, or fp8 (weight-only E4M3 with one scale per output row for the "
                     "decoder's linear layers; on the CPU backend the same numbers in fp32, as a reference)")
          ->check(CLI::IsMember({"none", "fp8"}));
      app.add_option("--tensor-parallel-size", c->backend.tensor_parallel_size, "GPUs per replica (1 in this build)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-model-len", c->engine.max_model_len,
                     "context length: prompt plus generated tokens (0: the model's max_position_embeddings)")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--max-num-seqs", c->engine.max_num_seqs, "sequences running at once (each choice of n counts)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-num-batched-tokens", c->engine.max_num_batched_tokens,
                     "tokens per engine step (prefill chunks plus decodes)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-waiting-requests", c->engine.max_waiting_requests,
                     "requests allowed to wait for a slot; beyond it requests get 429 with Retry-After")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--gpu-memory-utilization", c->backend.gpu_memory_utilization,
                     "fraction of GPU memory for weights, activations and KV cache (GPU only)")
          ->capture_default_str()->check(CLI::Range(0.01, 1.0));
      app.add_option("--kv-cache-tokens", c->backend.kv_cache_tokens,
                     "CPU backend: KV cache capacity in tokens (0: four sequences of the model's context)")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--swap-space", c->backend.swap_space_gib, "host memory (GiB) for swapped-out KV blocks")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--cpu-threads", c->backend.cpu_threads, "CPU backend compute threads (0: all cores)")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--block-size", c->backend.block_size, "tokens per KV cache block")
          ->capture_default_str()->check(CLI::IsMember({8, 16, 32, 64, 128}));
      app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", *prefix_caching,
                   "reuse the KV blocks of shared prompt prefixes (default: on)");
      app.add_option("--preemption-mode", *preemption,
                     "when KV blocks run out: recompute the preempted sequence later, or swap its blocks to host "
                     "memory (needs --swap-space)")
          ->capture_default_str()->check(CLI::IsMember({"recompute", "swap"}));
      app.add_option("--generation-config", c->generation_config,
                     "auto: sampling defaults from the model's generation_config.json; vllm: the API's defaults")
          ->capture_default_str()->check(CLI::IsMember({"auto", "vllm"}));
      app.add_option("--chat-template", c->chat_template,
                     "a Jinja chat template replacing the model's (tokenizer_config.json) for /v1/chat/completions "
                     "and /tokenize: a file, or the template text itself")
          ->type_name("FILE|TEXT");
      app.add_option("--max-logprobs", c->max_logprobs, "largest logprobs / top_logprobs a request may ask for")
          ->capture_default_str()->check(CLI::Range(0, 100));
      app.add_option("--tool-call-parser", c->tool_call_parser,
                     "read tool calls out of the model's output into message.tool_calls: hermes (Qwen2.5, Qwen3: "
                     "<tool_call>{json}</tool_call>), llama3_json (Llama 3.1+: a JSON object, <|python_tag|> "
                     "allowed), mistral ([TOOL_CALLS][...], or [TOOL_CALLS]name[ARGS]{...})")
          ->check(CLI::IsMember({"hermes", "llama3_json", "mistral"}));
      app.add_flag("--enable-auto-tool-choice", c->enable_auto_tool_choice,
                   "allow tool_choice \"auto\" (the default when a request has tools); needs --tool-call-parser");
      app.add_option("--reasoning-parser", c->reasoning_parser,
                     "chat: return the text the model writes between <think> and </think> as "
                     "message.reasoning_content (and .reasoning), the rest as content: deepseek_r1 (DeepSeek-R1 and "
                     "its distills), qwen3")
          ->type_name("NAME");
      app.add_option("--shutdown-timeout", c->shutdown_timeout_s,
                     "seconds in-flight requests may take to finish after SIGTERM before they are aborted")
          ->capture_default_str()->check(CLI::NonNegativeNumber);
      app.add_option("--max-request-bytes", c->max_request_bytes, "largest request body; larger ones get 413")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--max-http-threads", c->max_http_threads,
                     "connection threads at most (0: max-num-seqs + max-waiting-requests + 64); a streaming "
                     "response holds one for its whole life")
          ->capture_default_str();
      app.add_option("--read-timeout", c->read_timeout_s, "seconds a client may take to send its request")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_option("--write-timeout", c->write_timeout_s,
                     "seconds a client may leave a response unread before it is dropped (and cancelled)")
          ->capture_default_str()->check(CLI::PositiveNumber);
      app.add_flag("--disable-log-requests{false}", c->access_log, "no access log lines");
      app.add_option("--log-level", c->log_level, "trace, debug, info, warn, error")
          ->capture_default_str()->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
      auto cors = std::make_shared<std::array<std::string, 3>>(); // origins, methods, headers as given
      app.add_option("--allowed-origins", (*cors)[0],
                     "CORS: origins allowed to call the API from a browser, a JSON list '[\"https://a.example\"]' "
                     "or a,b (default: [\"*\"])");
      app.add_option("--allowed-methods", (*cors)[1], "CORS: methods a preflight may ask for (default: [\"*\"])");
      app.add_option("--allowed-headers", (*cors)[2], "CORS: request headers a preflight may ask for (default: [\"*\"])");
      app.add_flag("--allow-credentials", c->cors.allow_credentials,
                   "CORS: Access-Control-Allow-Credentials: true (the origin is then named, never \"*\")");
      app.add_option("--port-file", c->port_file, "write the bound port to this file once listening (scripts, tests)");

      auto cluster = std::make_shared<cluster_flags>();
      add_cluster_options(app, cluster);

      return [c, preemption, prefix_caching, cluster, cors] {
        apply_cluster_options(*cluster, *c);
        if (!(*cors)[0].empty()) c->cors.allowed_origins = gateway::parse_cors_list("--allowed-origins", (*cors)[0]);
        if (!(*cors)[1].empty()) c->cors.allowed_methods = gateway::parse_cors_list("--allowed-methods", (*cors)[1]);
        if (!(*cors)[2].empty()) c->cors.allowed_headers = gateway::parse_cors_list("--allowed-headers", (*cors)[2]);
        c->engine.enable_prefix_caching = *prefix_caching;
        c->engine.preemption = *preemption == "swap" ? preemption_mode::swap : preemption_mode::recompute;
        if (c->backend.dtype == "half") c->backend.dtype = "float16";
        if (c->backend.dtype == "float") c->backend.dtype = "float32";
        return gateway::run_server(*c);
      };
    }};

} // namespace
} // namespace actorserve::cli
