// The `engine` handle (actors/engine.hpp): owns or borrows an actor system, spawns the engine's
// actors, and turns calls from any thread into messages without blocking on the actors.
#include "actors/engine.hpp"
#include "actors/engine_actors.hpp"
#include "actors/engine_shared.hpp"

#include <caf/io/all.hpp>

#include <deque>
#include <future>
#include <thread>

namespace actorserve {

const char* to_string(engine_errc e) {
  switch (e) {
    case engine_errc::none: return "none";
    case engine_errc::invalid_request: return "invalid_request";
    case engine_errc::overloaded: return "overloaded";
    case engine_errc::shutting_down: return "shutting_down";
    case engine_errc::executor_failed: return "executor_failed";
    case engine_errc::deadline_exceeded: return "deadline_exceeded";
    case engine_errc::cancelled: return "cancelled";
  }
  return "unknown";
}

const char* to_string(finish_reason r) {
  switch (r) {
    case finish_reason::none: return "";
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::abort: return "abort";
  }
  return "";
}

// ---- output_queue ---------------------------------------------------------------------------

struct output_queue::state {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<request_output> items;
};

output_queue::output_queue() : state_(std::make_shared<state>()) {}

output_sink output_queue::sink() {
  std::weak_ptr<state> weak = state_;
  return [weak](request_output&& out) {
    if (auto st = weak.lock()) {
      std::lock_guard<std::mutex> lock(st->mutex);
      st->items.push_back(std::move(out));
      st->ready.notify_one();
    }
  };
}

std::optional<request_output> output_queue::pop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (!state_->ready.wait_for(lock, timeout, [&] { return !state_->items.empty(); }))
    return std::nullopt;
  request_output out = std::move(state_->items.front());
  state_->items.pop_front();
  return out;
}

// ---- engine ---------------------------------------------------------------------------------

struct engine::impl {
  std::unique_ptr<caf::actor_system_config> own_config;
  std::unique_ptr<caf::actor_system> own_system;
  caf::actor_system* system = nullptr;
  engine_handles handles;
  std::shared_ptr<const detokenizer> detok;
  model_config model;
  std::atomic<bool> stopped{false};
};

namespace {

std::unique_ptr<caf::actor_system_config> make_config(bool with_middleman) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  register_engine_types(*cfg);
  // A few scheduler threads: the actors are light; the executor has its own thread.
  cfg->set("scheduler.max-threads", std::max(2u, std::min(4u, std::thread::hardware_concurrency())));
  if (with_middleman) {
    configure_engine_middleman(*cfg);
    cfg->load<caf::io::middleman>();
  }
  return cfg;
}

model_config model_of(const executor_info& info) {
  model_config m;
  m.architecture = info.name;
  m.vocab_size = info.vocab_size;
  m.max_position_embeddings = info.max_position_embeddings;
  for (int32_t id : info.eos_token_ids)
    m.eos_token_ids.push_back(id);
  return m;
}

} // namespace

engine::engine(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

// Spawns a local executor and the engine's actors into p->system; p owns the system, or not.
std::unique_ptr<engine> engine::start_local(std::unique_ptr<impl> p, const engine_config& config,
                                            backend_factory make_backend, std::shared_ptr<const detokenizer> detok) {
  auto executor = spawn_executor(*p->system, std::move(make_backend));
  try {
    p->handles = spawn_engine(*p->system, config, executor, detok);
  } catch (...) {
    caf::anon_send_exit(executor, caf::exit_reason::user_shutdown);
    throw;
  }
  p->detok = std::move(detok);
  p->model = model_of(p->handles.info);
  return std::unique_ptr<engine>(new engine(std::move(p)));
}

std::unique_ptr<engine> engine::start(engine_config config, backend_factory make_backend,
                                      std::shared_ptr<const detokenizer> detok) {
  auto p = std::make_unique<impl>();
  p->own_config = make_config(false);
  p->own_system = std::make_unique<caf::actor_system>(*p->own_config);
  p->system = p->own_system.get();
  return start_local(std::move(p), config, std::move(make_backend), std::move(detok));
}

std::unique_ptr<engine> engine::start(caf::actor_system& system, engine_config config, backend_factory make_backend,
                                      std::shared_ptr<const detokenizer> detok) {
  auto p = std::make_unique<impl>();
  p->system = &system;
  return start_local(std::move(p), config, std::move(make_backend), std::move(detok));
}

std::unique_ptr<engine> engine::start(engine_config config, remote_executor_address address,
                                      std::shared_ptr<const detokenizer> detok) {
  auto p = std::make_unique<impl>();
  p->own_config = make_config(true);
  p->own_system = std::make_unique<caf::actor_system>(*p->own_config);
  p->system = p->own_system.get();
  auto executor = p->system->middleman().remote_actor<executor_actor>(address.host, address.port);
  if (!executor)
    throw std::runtime_error("cannot connect to the executor at " + address.host + ":" +
                             std::to_string(address.port) + ": " + p->system->render(executor.error()));
  p->handles = spawn_engine(*p->system, config, *executor, detok, caf::duration{config.remote_timeout});
  p->detok = std::move(detok);
  p->model = model_of(p->handles.info);
  return std::unique_ptr<engine>(new engine(std::move(p)));
}

engine::~engine() {
  stop();
  // The own actor system's destructor waits for every actor to finish.
}

submit_result engine::submit(generate_request request, output_sink sink) {
  auto& shared = impl_->handles.shared;
  if (impl_->stopped.load())
    return {0, engine_errc::shutting_down, "the engine is stopped"};
  submit_result result = shared->prepare(request);
  if (!result)
    return result;
  if (request.kv_import) {
    // A payload this backend cannot take is dropped here (the request is recomputed) rather
    // than failing its first step.
    const kv_snapshot& kv = *request.kv_import;
    const executor_info& info = impl_->handles.info;
    if (!kv.error.empty() || !info.kv_transfer || !(kv.layout == info.kv_layout) ||
        int64_t(kv.data.size()) != int64_t(kv.token_ids.size()) * info.kv_layout.token_bytes())
      request.kv_import.reset();
  }
  auto actor = spawn_request_actor(*impl_->system, request, shared->track(std::move(sink), shared),
                                   impl_->handles.scheduler, impl_->detok);
  // Sent from the caller's thread, so a later cancel() from the same thread arrives after it.
  caf::anon_send(impl_->handles.scheduler, admit_atom_v, std::move(request), actor);
  return result;
}

void engine::cancel(uint64_t request_id) {
  if (impl_->stopped.load())
    return;
  caf::anon_send(impl_->handles.scheduler, cancel_atom_v, request_id, int32_t(engine_errc::cancelled),
                 std::string("cancelled by the client"));
}

engine_stats engine::stats() const { return impl_->handles.shared->snapshot(); }

std::optional<engine_stats> engine::ping(std::chrono::milliseconds timeout) const {
  if (impl_->stopped.load())
    return std::nullopt;
  // A short-lived actor asks and the caller waits on a future for at most `timeout`: if the
  // actors get no thread to run on, the future is simply not ready in time (the actor answers
  // into it later, or never).
  auto answer = std::make_shared<std::promise<std::optional<engine_stats>>>();
  auto ready = answer->get_future();
  impl_->system->spawn([scheduler = impl_->handles.scheduler, timeout, answer](caf::event_based_actor* self) {
    self->request(scheduler, caf::duration{timeout}, stats_atom_v)
        .then([=](engine_stats& s) { answer->set_value(std::move(s)); },
              [=](caf::error&) { answer->set_value(std::nullopt); });
  });
  if (ready.wait_for(timeout) != std::future_status::ready)
    return std::nullopt;
  return ready.get();
}

void engine::export_kv(uint64_t request_id, std::function<void(kv_snapshot&&)> done) {
  if (impl_->stopped.load()) {
    kv_snapshot s;
    s.error = "the engine is stopped";
    done(std::move(s));
    return;
  }
  // A short-lived actor carries the request/reply so no caller thread blocks.
  impl_->system->spawn([scheduler = impl_->handles.scheduler, request_id,
                        done = std::move(done)](caf::event_based_actor* self) {
    self->request(scheduler, std::chrono::seconds(90), kv_export_atom_v, request_id)
        .then([=](kv_snapshot& snap) { done(std::move(snap)); },
              [=](caf::error& err) {
                kv_snapshot failed;
                failed.error = "the scheduler did not answer: " + to_string(err);
                done(std::move(failed));
              });
  });
}

std::optional<kv_transfer_layout> engine::kv_layout() const {
  if (!impl_->handles.info.kv_transfer)
    return std::nullopt;
  return impl_->handles.info.kv_layout;
}

bool engine::drain(std::chrono::milliseconds timeout) {
  auto& shared = *impl_->handles.shared;
  shared.draining.store(true);
  std::unique_lock<std::mutex> lock(shared.live_mutex);
  return shared.live_changed.wait_for(lock, timeout, [&] { return shared.live_requests == 0; });
}

void engine::stop() {
  if (impl_->stopped.exchange(true))
    return;
  auto& h = impl_->handles;
  h.shared->draining.store(true);
  caf::anon_send_exit(h.scheduler, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(h.kv, caf::exit_reason::user_shutdown);
  if (!h.remote_executor)
    caf::anon_send_exit(h.executor, caf::exit_reason::user_shutdown);
  // Give request actors a moment to deliver their final events.
  std::unique_lock<std::mutex> lock(h.shared->live_mutex);
  h.shared->live_changed.wait_for(lock, std::chrono::seconds(5), [&] { return h.shared->live_requests == 0; });
}

const model_config& engine::model() const { return impl_->model; }
int32_t engine::max_model_len() const { return impl_->handles.shared->limits.max_model_len; }
kv_cache_shape engine::kv_shape() const {
  return {impl_->handles.info.num_blocks, impl_->handles.info.num_host_blocks, impl_->handles.info.block_size};
}

// ---- remote executor ------------------------------------------------------------------------

int serve_executor(backend_factory make_backend, const std::string& host, uint16_t port,
                   const std::function<void(uint16_t)>& on_listening, const std::function<bool()>& should_stop) {
  auto cfg = make_config(true);
  caf::actor_system system{*cfg};
  auto executor = spawn_executor(system, std::move(make_backend));
  {
    // Fail early (and visibly) if the backend cannot be created.
    caf::scoped_actor self{system};
    std::string problem;
    self->request(executor, caf::infinite, info_atom_v)
        .receive([&](executor_info& info) { problem = info.error; },
                 [&](caf::error& err) { problem = system.render(err); });
    if (!problem.empty()) {
      caf::anon_send_exit(executor, caf::exit_reason::user_shutdown);
      throw std::runtime_error(problem);
    }
  }
  auto bound = system.middleman().publish(executor, port, host.empty() ? nullptr : host.c_str(), true);
  if (!bound) {
    caf::anon_send_exit(executor, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             system.render(bound.error()));
  }
  if (on_listening)
    on_listening(*bound);
  while (!should_stop || !should_stop())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  caf::anon_send_exit(executor, caf::exit_reason::user_shutdown);
  return 0;
}

} // namespace actorserve
