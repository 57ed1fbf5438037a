#pragma once
// The OpenAI-compatible HTTP server on cpp-httplib:
//   POST /v1/completions, POST /v1/chat/completions (streaming and not), GET /v1/models,
//   POST /tokenize, POST /detokenize (vLLM's, tokenize_api.hpp), GET /health, GET /ready,
//   GET /metrics, GET /version.
// /health answers 200 while the model loads (the process is alive) and, once the engine is
// attached, only if the engine's actors answer a ping within health_timeout; else 503 with the
// reason (vLLM's /health fails the same way when its engine is dead).
// Each connection runs on a thread of `connection_pool`; a generation request submits to the
// engine (never blocking) and its thread then waits only for that request's own events,
// delivered by the engine's sink into a `request_channel`, writing them as they come through
// httplib's chunked content provider. A client that goes away (the sink write fails or the
// socket is no longer writable) cancels its engine requests.
//
// Lifecycle: the server listens before the model is loaded (/health answers, /ready is 503
// "loading", /v1 is 503); `attach` makes it ready; `begin_drain` turns /ready to 503 and
// refuses new generation requests with 503 while the in-flight ones finish.

#include "actors/engine.hpp"
#include "gateway/cors.hpp"
#include "gateway/metrics.hpp"
#include "gateway/text_frontend.hpp"
#include "gateway/reasoning_parser.hpp"
#include "gateway/tool_parser.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actorserve::gateway {

struct server_options {
  std::string host = "0.0.0.0";
  int port = 8000;                          // 0: any free port (see http_server::bind)
  std::vector<std::string> served_model_names;
  std::string model_root;                   // the model folder, reported by /v1/models
  std::string api_key;                      // empty: no auth
  size_t max_body_bytes = 16u << 20;        // larger bodies get 413
  std::chrono::seconds read_timeout{30};    // a client slower than this sending its request is dropped
  std::chrono::seconds write_timeout{30};   // a client that reads nothing for this long is dropped
  std::chrono::seconds keep_alive_timeout{5};
  size_t min_threads = 8;                   // connection threads kept when idle
  size_t max_threads = 2048;                // connection threads at most (streams + others)
  int retry_after_s = 1;                    // Retry-After on 429/503
  int32_t max_logprobs = 20;                // largest logprobs / top_logprobs accepted
  std::optional<tool_parser_kind> tool_parser; // --tool-call-parser
  bool enable_auto_tool_choice = false;        // --enable-auto-tool-choice
  std::optional<reasoning_parser_kind> reasoning_parser; // --reasoning-parser (chat only)
  std::chrono::milliseconds health_timeout{2000}; // /health: how long the engine may take to answer a ping
  cors_options cors;                        // --allowed-origins/-methods/-headers, --allow-credentials
  bool access_log = true;
};

class http_server {
public:
  http_server(server_options options, server_metrics& metrics);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds the listening socket; returns the port (the chosen one for port 0). Throws on failure.
  int bind();
  /// Accepts and serves connections until stop(); blocks (run it on its own thread).
  void serve();
  /// The model is loaded: /ready turns 200 and /v1 serves through `engine`.
  void attach(engine& engine, const text_frontend& frontend);
  /// Hands every generation request to `submit` (and cancels through `cancel`) instead of the
  /// attached engine: the cluster router (actors/cluster/node.hpp). Call before serving requests.
  void route_through(std::function<submit_result(generate_request, output_sink)> submit,
                     std::function<void(uint64_t)> cancel);
  /// How /health checks the engine once attached: returns why it is unhealthy, or "" when it
  /// answered within the timeout. Default: engine::ping. Tests inject a stuck probe here.
  using health_probe = std::function<std::string(std::chrono::milliseconds timeout)>;
  void set_health_probe(health_probe probe);
  /// An extra route answering JSON (the cluster's admin calls, gateway/admin_routes.hpp):
  /// `handler(Authorization header, body)` returns the status and body; it checks auth itself.
  /// Call before serve().
  struct json_reply {
    int status = 200;
    std::string body;
  };
  using json_handler = std::function<json_reply(const std::string& authorization, const std::string& body)>;
  void add_json_route(const std::string& method, const std::string& path, json_handler handler);
  /// Text appended to /metrics (Prometheus exposition lines), e.g. the cluster's counters.
  void add_metrics_source(std::function<std::string()> source);
  /// /ready turns 503 and new generation requests get 503; in-flight ones go on.
  void begin_drain();
  bool draining() const { return draining_.load(); }
  /// Generation requests whose responses have not finished.
  int64_t in_flight() const { return in_flight_.load(); }
  /// Closes the listener and every connection; serve() returns.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

} // namespace actorserve::gateway
