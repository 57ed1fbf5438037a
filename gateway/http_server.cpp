#include "gateway/http_server.hpp"

#include "gateway/access_log.hpp"
#include "gateway/api_error.hpp"
#include "gateway/auth.hpp"
#include "gateway/connection_pool.hpp"
#include "gateway/openai_response.hpp"
#include "gateway/request_builder.hpp"
#include "gateway/request_channel.hpp"
#include "gateway/response_assembler.hpp"
#include "gateway/tokenize_api.hpp"
#include "gateway/version.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace actorserve::gateway {
namespace {

using clock_type = std::chrono::steady_clock;
using nlohmann::json;

// How long a connection thread waits for its request's next event before it checks that the
// client is still there: the bound on how late a disconnect is noticed while nothing streams.
constexpr std::chrono::milliseconds poll_interval{50};

// Bounded label values for http_requests_total: unknown paths would grow the series forever.
std::string endpoint_label(const std::string& path) {
  static const char* known[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/ready",
                                "/metrics", "/version", "/tokenize", "/detokenize"};
  for (const char* k : known)
    if (path == k)
      return path;
  return "other";
}

// --api-key guards the API: /v1/* and the tokenizer routes; probes and /metrics stay open.
bool needs_api_key(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

void send_error(httplib::Response& res, const api_error& e, int retry_after_s = 0) {
  res.status = e.status;
  if (e.status == 429 || e.status == 503)
    res.set_header("Retry-After", std::to_string(retry_after_s > 0 ? retry_after_s : 1));
  res.set_content(error_body(e), "application/json");
}

// The metrics label of a finished engine request: its error, else the worst choice finish.
std::string finished_label(const request_output& out, const std::vector<finish_reason>& reasons) {
  if (out.error != engine_errc::none)
    return "abort";
  std::string label = "stop";
  for (finish_reason r : reasons) {
    if (r == finish_reason::abort || r == finish_reason::none)
      return "abort";
    if (r == finish_reason::length)
      label = "length";
  }
  return label;
}

// One streaming (or chunked JSON) response in progress; shared by the content provider and
// the releaser httplib calls when the response ends, successfully or not.
struct response_job {
  response_job(assembler_options options) : assembler(std::move(options)) {}
  std::shared_ptr<request_channel> channel = std::make_shared<request_channel>();
  response_assembler assembler;
  std::vector<uint64_t> engine_ids;
  engine* eng = nullptr;
  std::function<void(uint64_t)> cancel; // set when requests go through a router (route_through)
  bool started = false;
  bool completed = false;
  clock_type::time_point received;
  clock_type::time_point last_write{};
  clock_type::time_point last_check{};
  access_record record;
};

// httplib 0.11 listens with a backlog of 5: a burst of clients connecting at once (hundreds of
// streams starting together) overflows it and the kernel drops or resets their connections.
// Linux lets listen() be called again on a listening socket to enlarge the queue.
class listening_server : public httplib::Server {
public:
  void enlarge_backlog(int backlog) {
    if (svr_sock_ != INVALID_SOCKET && ::listen(svr_sock_, backlog) != 0)
      spdlog::warn("cannot enlarge the listen backlog to {}: {}", backlog, std::strerror(errno));
  }
};

constexpr int listen_backlog = 4096; // the kernel caps it at net.core.somaxconn

} // namespace

struct http_server::impl {
  impl(http_server& owner, server_options o, server_metrics& m) : self(owner), options(std::move(o)), metrics(m) {}

  http_server& self;
  server_options options;
  server_metrics& metrics;
  listening_server server;
  std::atomic<engine*> eng{nullptr};
  std::atomic<const text_frontend*> frontend{nullptr};
  std::function<submit_result(generate_request, output_sink)> route_submit; // route_through
  std::function<void(uint64_t)> route_cancel;
  std::function<std::string()> metrics_source;
  http_server::health_probe probe_health; // set_health_probe; null: engine::ping
  int32_t max_model_len = 0;
  int64_t started_unix = unix_now();

  void install_routes();
  void handle_generation(const httplib::Request& req, httplib::Response& res, api_kind kind);
  request_limits limits() const;
  output_sink metered_sink(const std::shared_ptr<request_channel>& channel, size_t prompt, int32_t n);
};

request_limits http_server::impl::limits() const {
  request_limits l;
  l.model_names = options.served_model_names;
  l.max_logprobs = options.max_logprobs;
  l.tool_parser = options.tool_parser;
  l.enable_auto_tool_choice = options.enable_auto_tool_choice;
  const text_frontend* f = frontend.load();
  if (f) {
    l.vocab_size = f->vocab_size();
    l.defaults = f->default_sampling();
  }
  return l;
}

output_sink http_server::impl::metered_sink(const std::shared_ptr<request_channel>& channel, size_t prompt,
                                            int32_t n) {
  // Runs on the engine's actor threads, one call at a time per request: only quick work here.
  auto reasons = std::make_shared<std::vector<finish_reason>>(size_t(n), finish_reason::none);
  return [forward = channel->sink(prompt), m = &metrics, reasons](request_output&& out) {
    for (const choice_delta& c : out.choices)
      if (c.finish != finish_reason::none && c.index >= 0 && size_t(c.index) < reasons->size())
        (*reasons)[size_t(c.index)] = c.finish;
    if (out.finished)
      m->observe_request(out.metrics, finished_label(out, *reasons));
    forward(std::move(out));
  };
}

void http_server::impl::handle_generation(const httplib::Request& req, httplib::Response& res, api_kind kind) {
  const auto received = clock_type::now();
  engine* e = eng.load();
  const text_frontend* f = frontend.load();
  if (self.draining())
    return send_error(res, api_error(503, "The server is shutting down and accepts no new requests.", "server_error", {},
                                     "shutting_down"),
                      options.retry_after_s);
  if (!e || !f)
    return send_error(res, api_error(503, "The model is still loading; retry shortly.", "server_error", {},
                                     "model_loading"),
                      options.retry_after_s);

  const nlohmann::ordered_json body = parse_json_body(req.body);
  const request_limits l = limits();
  prepared_request prepared;
  generation_params params;
  bool echo = false;
  std::optional<tool_parser_kind> tool_parser;
  if (kind == api_kind::completion) {
    completion_request r = parse_completion_request(body, l);
    prepared = prepare_completion(r, *f, max_model_len, received);
    params = std::move(r.params);
    echo = r.echo;
  } else {
    chat_request r = parse_chat_request(body, l);
    prepared = prepare_chat(r, *f, max_model_len, received);
    params = std::move(r.params);
    tool_parser = r.tool_parser;
  }

  assembler_options ao;
  ao.kind = kind;
  ao.meta = {make_response_id(kind == api_kind::chat ? "chatcmpl" : "cmpl"), unix_now(), params.model,
             params.stream && params.include_usage};
  ao.stream = params.stream;
  ao.logprobs = params.wants_logprobs();
  ao.n = params.n;
  ao.num_prompts = prepared.engine_requests.size();
  if (echo)
    ao.echo_text = std::move(prepared.echo_text);
  ao.token_text = [f](int32_t token) { return f->token_text(token); };
  ao.tool_parser = tool_parser;
  if (kind == api_kind::chat) {
    ao.reasoning_parser = options.reasoning_parser;
    ao.prompt_opens_reasoning = prepared.prompt_opens_reasoning;
  }

  const std::string response_id = ao.meta.id;
  auto job = std::make_shared<response_job>(std::move(ao));
  job->eng = e;
  job->cancel = route_cancel ? route_cancel : std::function<void(uint64_t)>([e](uint64_t id) { e->cancel(id); });
  job->received = received;
  job->record = {response_id, req.remote_addr + ":" + std::to_string(req.remote_port), req.method, req.path, 200, 0,
                 0, 0, params.stream, ""};
  for (size_t p = 0; p < prepared.engine_requests.size(); ++p) {
    submit_result submitted =
        route_submit ? route_submit(std::move(prepared.engine_requests[p]), metered_sink(job->channel, p, params.n))
                     : e->submit(std::move(prepared.engine_requests[p]), metered_sink(job->channel, p, params.n));
    if (!submitted) {
      for (uint64_t id : job->engine_ids)
        job->cancel(id);
      job->channel->close();
      return send_error(res, engine_failure(submitted.error, submitted.message), options.retry_after_s);
    }
    job->engine_ids.push_back(submitted.request_id);
  }

  self.in_flight_.fetch_add(1);
  res.set_header("X-Request-Id", job->record.request_id);
  if (params.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no"); // nginx ingress: do not buffer the stream
  }
  auto provider = [job](size_t, httplib::DataSink& sink) -> bool {
    auto write = [&](const std::string& bytes) {
      if (bytes.empty())
        return true;
      job->last_write = clock_type::now();
      return sink.write(bytes.data(), bytes.size());
    };
    if (!job->started) {
      job->started = true;
      if (!write(job->assembler.start()))
        return false;
    }
    // A client that left is noticed by a failing write, or (when nothing is written for a
    // while: a queued request, a non-streamed body) by polling the socket.
    const auto now = clock_type::now();
    if (now - job->last_write >= poll_interval && now - job->last_check >= poll_interval) {
      job->last_check = now;
      if (!sink.is_writable())
        return false; // the releaser cancels
    }
    auto event = job->channel->pop(poll_interval);
    if (!event)
      return true;
    std::string out = job->assembler.on_event(event->prompt, event->output);
    // Coalesce what else has arrived into one write.
    while (!job->assembler.done()) {
      auto more = job->channel->pop(std::chrono::milliseconds(0));
      if (!more)
        break;
      out += job->assembler.on_event(more->prompt, more->output);
    }
    if (job->assembler.done()) {
      out += job->assembler.finish();
      if (!write(out))
        return false;
      job->completed = true;
      sink.done();
      return true;
    }
    return write(out);
  };
  auto releaser = [job, server = &self, log = options.access_log](bool) {
    if (!job->completed) {
      job->channel->close();
      for (uint64_t id : job->engine_ids)
        job->cancel(id);
      job->record.finish = "disconnected";
    } else {
      job->record.finish = job->assembler.summary_reason();
    }
    const usage_totals usage = job->assembler.usage();
    job->record.prompt_tokens = usage.prompt_tokens;
    job->record.completion_tokens = usage.completion_tokens;
    job->record.latency_ms = std::chrono::duration<double, std::milli>(clock_type::now() - job->received).count();
    if (log)
      log_access(job->record);
    server->in_flight_.fetch_sub(1);
  };
  res.set_chunked_content_provider(params.stream ? "text/event-stream" : "application/json", std::move(provider),
                                   std::move(releaser));
}

void http_server::impl::install_routes() {
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // CORS first: a preflight carries no API key, and errors (401 included) must be readable
    // by the page that sent the request.
    const std::string origin = req.get_header_value("Origin");
    const std::string preflight_method = req.get_header_value("Access-Control-Request-Method");
    if (is_preflight(req.method, origin, preflight_method)) {
      const preflight_answer a =
          cors_preflight(options.cors, origin, preflight_method, req.get_header_value("Access-Control-Request-Headers"));
      for (const auto& [name, value] : a.headers)
        res.set_header(name, value);
      if (a.status == 200)
        res.set_content("OK", "text/plain");
      else
        send_error(res, api_error(a.status, a.reason, "invalid_request_error", {}, "cors_not_allowed"));
      return httplib::Server::HandlerResponse::Handled;
    }
    for (const auto& [name, value] : cors_response_headers(options.cors, origin))
      res.set_header(name, value);
    if (!options.api_key.empty() && needs_api_key(req.path) &&
        !bearer_authorized(req.get_header_value("Authorization"), options.api_key)) {
      send_error(res, unauthorized_error());
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Responses httplib makes itself (unknown route 404, 413, 400 for a broken request line)
  // get an OpenAI-shaped body; ours already have one.
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_)
      return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413)
      send_error(res, api_error(413, "The request body is larger than the server's limit (--max-request-bytes).",
                                "invalid_request_error", {}, "request_too_large"));
    else if (res.status == 404)
      send_error(res, api_error(404, "No route for " + req.method + " " + req.path + ".", "invalid_request_error", {},
                                "not_found"));
    else
      send_error(res, api_error(res.status, "The HTTP request could not be processed (" + std::to_string(res.status) + ").",
                                res.status >= 500 ? "server_error" : "invalid_request_error"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const api_error& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", req.method, req.path, e.what());
      send_error(res, api_error(500, std::string("Internal error: ") + e.what(), "server_error"));
    } catch (...) {
      send_error(res, api_error(500, "Internal error.", "server_error"));
    }
  });
  server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_http(req.method, endpoint_label(req.path), res.status);
    // Streamed generation responses are logged by their releaser, with their token counts.
    if (options.access_log && !res.is_chunked_content_provider_ && req.path != "/health" && req.path != "/ready" &&
        req.path != "/metrics")
      log_access({"-", req.remote_addr + ":" + std::to_string(req.remote_port), req.method, req.path, res.status, 0,
                  0, 0, false, ""});
  });

  auto guarded = [this](api_kind kind) {
    return [this, kind](const httplib::Request& req, httplib::Response& res) {
      try {
        handle_generation(req, res, kind);
      } catch (const api_error& e) {
        send_error(res, e, options.retry_after_s);
      }
    };
  };
  server.Post("/v1/completions", guarded(api_kind::completion));
  server.Post("/v1/chat/completions", guarded(api_kind::chat));
  // The tokenizer routes answer from the text frontend alone (no engine request).
  auto tokenizer_route = [this](auto respond) {
    return [this, respond](const httplib::Request& req, httplib::Response& res) {
      const text_frontend* f = frontend.load();
      if (!f)
        return send_error(res, api_error(503, "The model is still loading; retry shortly.", "server_error", {},
                                         "model_loading"),
                          options.retry_after_s);
      try {
        res.set_content(respond(parse_json_body(req.body), *f), "application/json");
      } catch (const api_error& e) {
        send_error(res, e);
      }
    };
  };
  server.Post("/tokenize", tokenizer_route([this](const nlohmann::ordered_json& body, const text_frontend& f) {
    return tokenize_response(body, limits(), f, max_model_len);
  }));
  server.Post("/detokenize", tokenizer_route([this](const nlohmann::ordered_json& body, const text_frontend& f) {
    return detokenize_response(body, limits(), f);
  }));
  server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_response(options.served_model_names, started_unix, max_model_len, options.model_root),
                    "application/json");
  });
  server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    engine* e = eng.load();
    if (!e) // loading: the process is alive
      return res.set_content(json{{"status", "loading"}}.dump(), "application/json");
    const auto timeout = options.health_timeout;
    std::string problem;
    if (probe_health)
      problem = probe_health(timeout);
    else if (!e->ping(timeout))
      problem = "the engine did not answer a ping within " + std::to_string(timeout.count()) + " ms (stopped or stuck)";
    res.status = problem.empty() ? 200 : 503;
    res.set_content(problem.empty() ? json{{"status", "ok"}}.dump()
                                    : json{{"status", "unhealthy"}, {"reason", problem}}.dump(),
                    "application/json");
  });
  server.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    const char* state = self.draining() ? "draining" : eng.load() ? "ready" : "loading";
    res.status = std::string(state) == "ready" ? 200 : 503;
    res.set_content(json{{"ready", res.status == 200}, {"status", state}}.dump(), "application/json");
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (engine* e = eng.load())
      metrics.update(e->stats());
    res.set_content(metrics.serialize() + (metrics_source ? metrics_source() : std::string()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"version", version()}}.dump(), "application/json");
  });
}

http_server::http_server(server_options options, server_metrics& metrics)
    : impl_(std::make_unique<impl>(*this, std::move(options), metrics)) {
  impl& d = *impl_;
  const server_options& o = d.options;
  d.server.new_task_queue = [min = o.min_threads, max = o.max_threads] {
    return new connection_pool(min, max, std::chrono::seconds(10)); // idle threads leave after 10 s
  };
  d.server.set_payload_max_length(o.max_body_bytes);
  d.server.set_read_timeout(o.read_timeout.count(), 0);
  d.server.set_write_timeout(o.write_timeout.count(), 0);
  d.server.set_keep_alive_timeout(o.keep_alive_timeout.count());
  d.install_routes();
}

http_server::~http_server() { stop(); }

int http_server::bind() {
  impl& d = *impl_;
  if (d.options.port == 0) {
    const int port = d.server.bind_to_any_port(d.options.host);
    if (port < 0)
      throw std::runtime_error("cannot bind to " + d.options.host + " (any port)");
    d.options.port = port;
    d.server.enlarge_backlog(listen_backlog);
    return port;
  }
  if (!d.server.bind_to_port(d.options.host, d.options.port))
    throw std::runtime_error("cannot bind to " + d.options.host + ":" + std::to_string(d.options.port) +
                             " (in use, or not an address of this machine)");
  d.server.enlarge_backlog(listen_backlog);
  return d.options.port;
}

void http_server::serve() { impl_->server.listen_after_bind(); }

void http_server::attach(engine& e, const text_frontend& frontend) {
  impl_->max_model_len = e.max_model_len();
  impl_->frontend.store(&frontend);
  impl_->eng.store(&e);
}

void http_server::route_through(std::function<submit_result(generate_request, output_sink)> submit,
                                std::function<void(uint64_t)> cancel) {
  impl_->route_submit = std::move(submit);
  impl_->route_cancel = std::move(cancel);
}

void http_server::set_health_probe(health_probe probe) { impl_->probe_health = std::move(probe); }

void http_server::add_json_route(const std::string& method, const std::string& path, json_handler handler) {
  auto route = [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    json_reply r = handler(req.get_header_value("Authorization"), req.body);
    res.status = r.status;
    res.set_content(r.body, "application/json");
  };
  if (method == "GET")
    impl_->server.Get(path, std::move(route));
  else
    impl_->server.Post(path, std::move(route));
}

void http_server::add_metrics_source(std::function<std::string()> source) {
  impl_->metrics_source = std::move(source);
}

void http_server::begin_drain() { draining_.store(true); }

namespace {

// httplib 0.11 lets a connection idle in keep-alive for up to its keep-alive timeout even after
// Server::stop(), and its listen loop joins every connection thread before returning, so one
// idle client would hold the shutdown for seconds. Shutting down the connected sockets of our
// port makes those threads see end-of-stream and leave at once.
void shutdown_connections(int port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_STREAM)
      continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) // the listener has no peer
      continue;
    int local_port = -1;
    if (local.ss_family == AF_INET)
      local_port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    else if (local.ss_family == AF_INET6)
      local_port = ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    if (local_port == port)
      ::shutdown(fd, SHUT_RDWR);
  }
}

} // namespace

void http_server::stop() {
  if (impl_ && impl_->server.is_running()) {
    impl_->server.stop();
    shutdown_connections(impl_->options.port);
  }
}

} // namespace actorserve::gateway
