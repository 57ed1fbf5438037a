// /health asks the engine: 200 while its actors answer a ping, 503 with the reason when the
// engine is stopped (its scheduler is gone) or stuck (its actors get no thread to run on).
#include "actors/engine.hpp"
#include "actors/engine_actors.hpp"
#include "actors/fake_backend.hpp"
#include "gateway/http_server.hpp"

#include <catch2/catch.hpp>
#include <caf/all.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <future>
#include <thread>

using namespace actorserve;
using namespace actorserve::gateway;
using namespace std::chrono_literals;

namespace {

class no_text_frontend : public text_frontend {
public:
  std::vector<int32_t> encode(const std::string&, bool) const override { return {3}; }
  std::string decode(std::span<const int32_t>, bool) const override { return ""; }
  std::string token_text(int32_t) const override { return ""; }
  std::string apply_chat_template(const chat_request&) const override { return ""; }
  bool chat_adds_special_tokens() const override { return false; }
  int64_t vocab_size() const override { return 64; }
  sampling_params default_sampling() const override { return {}; }
  std::shared_ptr<const detokenizer> engine_detokenizer() const override { return nullptr; }
};

engine_config small_engine() {
  engine_config c;
  c.max_num_seqs = 4;
  c.max_model_len = 256;
  return c;
}

// A server on a free port, serving on its own thread until destroyed.
struct running_server {
  explicit running_server(std::chrono::milliseconds health_timeout) : metrics("m") {
    server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.served_model_names = {"m"};
    o.access_log = false;
    o.health_timeout = health_timeout;
    server = std::make_unique<http_server>(o, metrics);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~running_server() {
    server->stop();
    thread.join();
  }
  std::pair<int, nlohmann::json> health() {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/health");
    REQUIRE(res);
    return {res->status, nlohmann::json::parse(res->body)};
  }
  server_metrics metrics;
  std::unique_ptr<http_server> server;
  int port = 0;
  std::thread thread;
};

} // namespace

TEST_CASE("/health: 200 while loading and while the engine answers and 503 once it is stopped", "[gateway][health]") {
  // The engine outlives the server, as in serve_app: an actor system is not destroyed while
  // threads that have called into it (the server's connection threads) are alive.
  no_text_frontend frontend;
  auto e = engine::start(small_engine(), [] { return make_fake_backend(); });
  running_server s(500ms);
  auto [loading_status, loading] = s.health();
  CHECK(loading_status == 200); // the process is alive; /ready says it cannot serve yet
  CHECK(loading["status"] == "loading");

  REQUIRE(e->ping(1s).has_value());
  s.server->attach(*e, frontend);
  auto [ok_status, ok] = s.health();
  CHECK(ok_status == 200);
  CHECK(ok == nlohmann::json{{"status", "ok"}});

  e->stop();
  CHECK_FALSE(e->ping(1s).has_value());
  auto [dead_status, dead] = s.health();
  CHECK(dead_status == 503);
  CHECK(dead["status"] == "unhealthy");
  CHECK_THAT(dead["reason"].get<std::string>(), Catch::Contains("did not answer"));
}

TEST_CASE("/health: an engine whose actors cannot run is reported within the timeout", "[gateway][health]") {
  // The engine lives in an actor system with one worker thread; an actor that blocks it (as a
  // deadlock or a runaway handler would) leaves the scheduler unable to answer.
  caf::actor_system_config cfg;
  register_engine_types(cfg);
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system system{cfg};
  auto e = engine::start(system, small_engine(), [] { return make_fake_backend(); });
  REQUIRE(e->ping(2s).has_value());

  running_server s(300ms);
  no_text_frontend frontend;
  s.server->attach(*e, frontend);
  CHECK(s.health().first == 200);

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> blocking;
  auto blocker = system.spawn([released, &blocking](caf::event_based_actor*) -> caf::behavior {
    return {[released, &blocking](int) {
      blocking.set_value();
      released.wait(); // holds the only worker thread
    }};
  });
  caf::anon_send(blocker, 1);
  blocking.get_future().wait();

  const auto t0 = std::chrono::steady_clock::now();
  auto [status, body] = s.health();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(status == 503);
  CHECK_THAT(body["reason"].get<std::string>(), Catch::Contains("300 ms"));
  CHECK(took >= 300ms);
  CHECK(took < 3s);

  release.set_value();
  CHECK(e->ping(2s).has_value()); // unstuck: healthy again
  CHECK(s.health().first == 200);
  caf::anon_send_exit(blocker, caf::exit_reason::user_shutdown);
}

TEST_CASE("/health: an injected probe's answer is the reason of the 503", "[gateway][health]") {
  no_text_frontend frontend;
  auto e = engine::start(small_engine(), [] { return make_fake_backend(); });
  running_server s(100ms);
  s.server->attach(*e, frontend);
  std::chrono::milliseconds seen{0};
  s.server->set_health_probe([&](std::chrono::milliseconds timeout) {
    seen = timeout;
    return std::string("executor lost");
  });
  auto [status, body] = s.health();
  CHECK(status == 503);
  CHECK(body["reason"] == "executor lost");
  CHECK(seen == 100ms);
}
