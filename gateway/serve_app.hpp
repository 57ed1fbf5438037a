#pragma once
// `actorserve serve`: the process around the HTTP server. Binds first (so /health answers while
// the model loads), loads the tokenizer and starts the engine, then serves until SIGTERM or
// SIGINT: /ready turns false, new requests get 503, in-flight ones finish for up to
// --shutdown-timeout seconds, the rest are aborted, and the process exits 0. A second signal
// ends the drain at once.

#include "actors/cluster/node.hpp"
#include "actors/engine.hpp"
#include "gateway/backend_setup.hpp"
#include "gateway/cors.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace actorserve::gateway {

struct serve_config {
  // where and what
  std::string model;                         // model folder; empty: the bundled demo model
  std::vector<std::string> served_model_names; // default: the folder's name
  std::string host = "0.0.0.0";
  int port = 8000;
  std::string api_key;
  backend_config backend;
  // engine
  engine_config engine;
  std::string generation_config = "auto";    // auto: defaults from generation_config.json; vllm: none
  int32_t max_logprobs = 20;
  std::string chat_template;                 // --chat-template: a file or the template text; empty: the model's
  // tool calls (vLLM's flags)
  std::string tool_call_parser;              // hermes, llama3_json, mistral; empty: none
  bool enable_auto_tool_choice = false;      // allow tool_choice "auto" (needs tool_call_parser)
  std::string reasoning_parser;              // deepseek_r1, qwen3: <think> text -> reasoning_content; empty: none
  // HTTP
  double shutdown_timeout_s = 30;
  size_t max_request_bytes = 16u << 20;
  size_t max_http_threads = 0;               // 0: sized from max_num_seqs + max_waiting_requests
  int read_timeout_s = 30;
  int write_timeout_s = 30;
  bool access_log = true;
  cors_options cors;                         // vLLM's --allowed-origins, --allowed-methods, ...
  std::string log_level = "info";
  std::string port_file;                     // write the bound port here once listening (tests)
  // cluster (actors/cluster): on when cluster_enabled (--cluster-port, --cluster-peers or --cluster-dns)
  bool cluster_enabled = false;
  cluster::cluster_config cluster;
  std::string cluster_port_file;             // write the bound cluster port here (tests)
};

/// Runs the server until it is told to stop; returns the exit status.
int run_server(serve_config config);

} // namespace actorserve::gateway
