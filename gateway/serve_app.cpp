#include "gateway/serve_app.hpp"

#include "gateway/admin_routes.hpp"
#include "gateway/backend_setup.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/model_location.hpp"
#include "gateway/text_frontend.hpp"
#include "model/error.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <pthread.h>
#include <stdexcept>
#include <thread>

namespace actorserve::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void log_config(const serve_config& c, const fs::path& model_dir, const std::string& device, size_t http_threads) {
  spdlog::info("actorserve serve: model {} (served as {}), device {}, dtype {}, quantization {}", model_dir.string(),
               fmt::join(c.served_model_names, ", "), device, c.backend.dtype, c.backend.quantization.empty() ? "none" : c.backend.quantization);
  spdlog::info("engine: max_model_len {}, max_num_seqs {}, max_num_batched_tokens {}, max_waiting_requests {}, "
               "block_size {}, prefix caching {}, preemption {}, kv_cache_tokens {}, gpu_memory_utilization {}",
               c.engine.max_model_len == 0 ? std::string("auto") : std::to_string(c.engine.max_model_len),
               c.engine.max_num_seqs, c.engine.max_num_batched_tokens, c.engine.max_waiting_requests, c.backend.block_size,
               c.engine.enable_prefix_caching ? "on" : "off",
               c.engine.preemption == preemption_mode::swap ? "swap" : "recompute",
               c.backend.kv_cache_tokens == 0 ? std::string("auto") : std::to_string(c.backend.kv_cache_tokens),
               c.backend.gpu_memory_utilization);
  spdlog::info("http: {}:{}, api key {}, http threads up to {}, max request {} bytes, read/write timeout {}/{} s, "
               "shutdown timeout {} s, generation config {}, tool call parser {}{}, reasoning parser {}",
               c.host, c.port, c.api_key.empty() ? "off" : "on", http_threads, c.max_request_bytes, c.read_timeout_s,
               c.write_timeout_s, c.shutdown_timeout_s, c.generation_config,
               c.tool_call_parser.empty() ? "none" : c.tool_call_parser,
               c.enable_auto_tool_choice ? " (auto tool choice on)" : "",
               c.reasoning_parser.empty() ? "none" : c.reasoning_parser);
}

// Waits for SIGINT or SIGTERM (blocked in every thread, so only this wait sees them), up to
// `timeout`; returns the signal or 0.
int wait_signal(const sigset_t& set, std::chrono::milliseconds timeout) {
  timespec ts{time_t(timeout.count() / 1000), long((timeout.count() % 1000) * 1000000)};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

} // namespace

int run_server(serve_config cfg) {
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // they are received only by wait_signal; a client that disconnects must not kill us either.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::optional<tool_parser_kind> tool_parser;
  if (!cfg.tool_call_parser.empty()) {
    tool_parser = tool_parser_from_name(cfg.tool_call_parser);
    if (!tool_parser)
      throw std::runtime_error("--tool-call-parser " + cfg.tool_call_parser + ": unknown parser (known: " +
                               tool_parser_names() + ")");
  }
  if (cfg.enable_auto_tool_choice && !tool_parser)
    throw std::runtime_error("--enable-auto-tool-choice requires --tool-call-parser");
  std::optional<reasoning_parser_kind> reasoning_parser;
  if (!cfg.reasoning_parser.empty()) {
    reasoning_parser = reasoning_parser_from_name(cfg.reasoning_parser);
    if (!reasoning_parser)
      throw std::runtime_error("--reasoning-parser " + cfg.reasoning_parser + ": unknown parser (known: " +
                               reasoning_parser_names() + ")");
  }
  // Before binding, so a template that does not compile fails the start at once.
  const std::string chat_template = cfg.chat_template.empty() ? std::string() : read_chat_template_arg(cfg.chat_template);
  if (!chat_template.empty())
    spdlog::info("--chat-template: a {}-byte template replaces the model's", chat_template.size());
  const fs::path model_dir = cfg.model.empty() ? default_model_dir() : fs::path(cfg.model);
  if (!fs::is_regular_file(model_dir / "config.json"))
    throw std::runtime_error("--model " + model_dir.string() + ": no config.json there (a Hugging Face model folder)");
  if (cfg.served_model_names.empty())
    cfg.served_model_names.push_back(cfg.model.empty() ? "demo" : fs::weakly_canonical(model_dir).filename().string());
  const std::string device = resolve_device(cfg.backend.device);
  // A connection thread per admitted stream (running + waiting), and room for probes, scrapes
  // and requests that are about to be refused with 429.
  const size_t http_threads = cfg.max_http_threads
                                  ? cfg.max_http_threads
                                  : size_t(cfg.engine.max_num_seqs) + size_t(cfg.engine.max_waiting_requests) + 64;
  log_config(cfg, model_dir, device, http_threads);

  server_metrics metrics(cfg.served_model_names.front());
  server_options so;
  so.host = cfg.host;
  so.port = cfg.port;
  so.served_model_names = cfg.served_model_names;
  so.model_root = model_dir.string();
  so.api_key = cfg.api_key;
  so.max_body_bytes = cfg.max_request_bytes;
  so.read_timeout = std::chrono::seconds(cfg.read_timeout_s);
  so.write_timeout = std::chrono::seconds(cfg.write_timeout_s);
  so.max_threads = http_threads;
  so.access_log = cfg.access_log;
  so.cors = cfg.cors;
  so.max_logprobs = cfg.max_logprobs;
  so.tool_parser = tool_parser;
  so.reasoning_parser = reasoning_parser;
  so.enable_auto_tool_choice = cfg.enable_auto_tool_choice;
  http_server server(so, metrics);
  admin_target admin; // declared before the server thread: its routes read it until the end
  install_admin_routes(server, admin, cfg.api_key);
  const int port = server.bind();
  std::thread http_thread([&] { server.serve(); });
  spdlog::info("listening on http://{}:{} (loading the model; /ready is 503 until done)", cfg.host, port);
  if (!cfg.port_file.empty()) {
    std::ofstream(cfg.port_file + ".tmp") << port << "\n";
    fs::rename(cfg.port_file + ".tmp", cfg.port_file);
  }

  std::unique_ptr<text_frontend> frontend;
  std::unique_ptr<engine> eng;
  std::unique_ptr<cluster::cluster_node> cluster_node;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    frontend = load_text_frontend(model_dir, cfg.generation_config == "auto", chat_template);
    eng = engine::start(cfg.engine, make_backend_factory(cfg.backend, cfg.engine, model_dir, device), frontend->engine_detokenizer());
    if (cfg.cluster_enabled) {
      cfg.cluster.block_size = cfg.backend.block_size;
      cfg.cluster.capacity = cfg.engine.max_num_seqs;
      { // KV payloads are only accepted from peers serving the same model (name + config.json)
        std::ifstream config_json(model_dir / "config.json");
        std::stringstream text;
        text << config_json.rdbuf();
        cfg.cluster.model_id = cluster::kv_model_id(cfg.served_model_names.front(), text.str());
      }
      cluster_node = cluster::cluster_node::start(cfg.cluster, *eng);
      cluster::cluster_node* node = cluster_node.get();
      server.route_through([node](generate_request r, output_sink s) { return node->submit(std::move(r), std::move(s)); },
                           [node](uint64_t id) { node->cancel(id); });
      server.add_metrics_source([node, name = cfg.served_model_names.front()] { return node->metrics_text(name); });
      admin.node.store(node);
      if (!cfg.cluster_port_file.empty()) {
        std::ofstream(cfg.cluster_port_file + ".tmp") << node->port() << "\n";
        fs::rename(cfg.cluster_port_file + ".tmp", cfg.cluster_port_file);
      }
    }
    server.attach(*eng, *frontend);
    spdlog::info("ready: {} on {} in {:.1f} s, max_model_len {}, {} KV blocks of {} tokens", model_dir.string(), device,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), eng->max_model_len(),
                 eng->kv_shape().num_blocks, eng->kv_shape().block_size);
  } catch (...) {
    server.stop();
    http_thread.join();
    throw;
  }

  int sig = 0;
  while ((sig = wait_signal(stop_signals, 1000ms)) == 0) {
  }
  spdlog::info("{} received: draining ({} in flight, up to {} s; a second signal stops at once)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", server.in_flight(), cfg.shutdown_timeout_s);
  server.begin_drain();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(int64_t(cfg.shutdown_timeout_s * 1000));
  if (cluster_node) { // move the sequences running here to other nodes; our own clients' streams go on through them
    const auto t0 = std::chrono::steady_clock::now();
    const bool moved = cluster_node->drain(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - t0));
    spdlog::info("cluster: drain {} in {:.3f} s", moved ? "done" : "timed out",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  bool forced = false;
  while (server.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    if (wait_signal(stop_signals, 50ms)) {
      forced = true;
      break;
    }
  }
  if (server.in_flight() > 0) {
    spdlog::warn("{}: aborting {} requests still in flight", forced ? "second signal" : "shutdown timeout",
                 server.in_flight());
    eng->stop(); // their streams get a final abort event and end
    const auto grace = std::chrono::steady_clock::now() + 2s;
    while (server.in_flight() > 0 && std::chrono::steady_clock::now() < grace)
      std::this_thread::sleep_for(10ms);
  }
  server.stop();
  http_thread.join();
  cluster_node.reset();
  eng.reset();
  spdlog::info("stopped");
  return 0;
}

} // namespace actorserve::gateway
