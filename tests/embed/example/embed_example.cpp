// Embedding actorserve in another CAF application: the application owns the actor system,
// registers actorserve's message types, spawns an engine in it, and talks to the engine with
// messages. Its own actor sends generate requests and receives `request_output` messages.
//
//   embed_example [MODEL_DIR]     (default: the deterministic fake model)
//
// Exits 0 when every request streamed its tokens and finished; the test suite runs it.
#include "actors/engine_actors.hpp"
#include "actors/fake_backend.hpp"
#include "model/cpu_backend.hpp"

#include <caf/all.hpp>

#include <iostream>
#include <map>

using namespace actorserve;

namespace {

struct client_state {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, std::string> finish;
  int pending = 0;
  bool failed = false;
};

// A client actor of the application: submits three requests and collects their streams.
caf::behavior client(caf::stateful_actor<client_state>* self, scheduler_actor scheduler) {
  for (int i = 0; i < 3; ++i) {
    generate_request r;
    r.prompt_token_ids = {5, 6, 7, int32_t(8 + i)};
    r.max_tokens = 8 + i;
    r.sampling.temperature = i == 0 ? 0.0f : 0.7f;
    r.sampling.seed = uint64_t(i);
    r.has_seed = true;
    r.ignore_eos = true;
    ++self->state.pending;
    self->request(scheduler, std::chrono::seconds(10), generate_atom_v, r, caf::actor{self})
        .then(
            [=](const submit_result& res) {
              if (!res) {
                std::cerr << "refused: " << res.message << "\n";
                self->state.failed = true;
                self->quit();
              }
            },
            [=](const caf::error& err) {
              std::cerr << "no answer: " << to_string(err) << "\n";
              self->state.failed = true;
              self->quit();
            });
  }
  return {
      [=](const request_output& out) {
        auto& st = self->state;
        for (const auto& c : out.choices) {
          auto& t = st.tokens[out.request_id];
          t.insert(t.end(), c.token_ids.begin(), c.token_ids.end());
          if (c.finish != finish_reason::none)
            st.finish[out.request_id] = to_string(c.finish);
        }
        if (out.error != engine_errc::none) {
          std::cerr << "request " << out.request_id << " failed: " << out.error_message << "\n";
          st.failed = true;
        }
        if (out.finished && --st.pending == 0)
          self->quit();
      },
  };
}

} // namespace

int main(int argc, char** argv) {
  caf::actor_system_config cfg;
  register_engine_types(cfg); // every node that exchanges actorserve messages
  caf::actor_system system{cfg};

  backend_factory factory;
  if (argc > 1) {
    std::string dir = argv[1];
    factory = [dir] {
      cpu_backend_options o;
      o.num_blocks = 64;
      o.num_threads = 1;
      return make_cpu_backend(dir, o);
    };
  } else {
    factory = [] { return make_fake_backend(); };
  }

  engine_config config;
  config.max_num_seqs = 8;
  engine_handles engine = spawn_engine(system, config, spawn_executor(system, factory), nullptr);

  auto c = system.spawn(client, engine.scheduler);
  caf::scoped_actor self{system};
  self->monitor(c);
  self->receive([](const caf::down_msg&) {}); // the client quits once every stream finished
  engine_stats stats;
  self->request(engine.scheduler, std::chrono::seconds(5), stats_atom_v)
      .receive([&](engine_stats& s) { stats = s; }, [](caf::error&) {});
  std::cout << "finished requests: " << stats.num_finished_requests << ", generated tokens: " << stats.generation_tokens
            << ", steps: " << stats.num_steps << "\n";
  caf::anon_send_exit(engine.scheduler, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(engine.kv, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(engine.executor, caf::exit_reason::user_shutdown);
  bool ok = stats.num_finished_requests == 3 && stats.generation_tokens == 8 + 9 + 10;
  std::cout << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}
