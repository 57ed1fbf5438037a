// The request actor: one per request. Turns the scheduler's token events into the caller's
// stream (request_state: detokenization, stop strings, finish reasons), measures the request's
// latencies, tells the scheduler when a stop string ends a choice, and enforces the deadline.
#include "actors/engine_actors.hpp"
#include "actors/request_state.hpp"

namespace actorserve {

namespace {

double seconds_between(engine_clock::time_point a, engine_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct request_actor_state {
  std::unique_ptr<request_state> state;
  generate_request request;
  output_sink sink;
  scheduler_actor scheduler;
  caf::actor client;
  bool done = false;
  bool first_token_seen = false;
  request_metrics metrics;
  std::vector<engine_clock::time_point> last_token_time; // per choice
  static inline const char* name = "actorserve.request";
};

using request_pointer = request_actor::stateful_pointer<request_actor_state>;

void deliver(request_pointer self, request_output&& out) {
  auto& st = self->state;
  out.request_id = st.request.id;
  out.usage = st.state->usage();
  out.finished = st.state->all_finished();
  if (out.finished) {
    st.metrics.e2e_s = seconds_between(st.request.arrival_time, engine_clock::now());
    out.metrics = st.metrics;
    st.done = true;
  }
  if (st.sink)
    st.sink(std::move(out));
  if (st.done)
    self->quit();
}

/// Ends the request now (cancel, deadline, lost scheduler or client) and tells the scheduler.
void abort_now(request_pointer self, engine_errc code, const std::string& message, bool tell_scheduler) {
  auto& st = self->state;
  if (st.done)
    return;
  if (tell_scheduler)
    self->send(st.scheduler, cancel_atom_v, st.request.id, int32_t(code), message);
  request_output out;
  out.choices = st.state->finish_all(finish_reason::abort);
  out.error = code;
  out.error_message = message;
  deliver(self, std::move(out));
}

void on_event(request_pointer self, const token_event& e) {
  auto& st = self->state;
  if (st.done)
    return;
  auto now = engine_clock::now();
  if (e.first_scheduled_us >= 0)
    st.metrics.queue_time_s = std::max(0.0, (e.first_scheduled_us - to_us(st.request.arrival_time)) * 1e-6);
  st.metrics.num_cached_prompt_tokens = e.num_cached_prompt_tokens;
  st.metrics.num_preemptions = e.num_preemptions;
  request_output out;
  for (const auto& c : e.choices) {
    if (c.index < 0 || c.index >= st.state->n() || st.state->finished(c.index))
      continue;
    bool by_string = false;
    choice_delta d = st.state->add_tokens(c.index, c.tokens, c.finish, c.stop_token, by_string);
    if (by_string)
      self->send(st.scheduler, finish_atom_v, st.request.id, c.index);
    for (size_t k = 0; k < d.token_ids.size(); ++k) {
      if (!st.first_token_seen) {
        st.first_token_seen = true;
        st.metrics.ttft_s = seconds_between(st.request.arrival_time, now);
      }
      auto& last = st.last_token_time[size_t(c.index)];
      if (last != engine_clock::time_point{})
        st.metrics.inter_token_s.push_back(seconds_between(last, now));
      last = now;
    }
    if (!d.token_ids.empty() || !d.text.empty() || d.finish != finish_reason::none)
      out.choices.push_back(std::move(d));
  }
  if (e.error != engine_errc::none) {
    for (auto& d : st.state->finish_all(finish_reason::abort))
      out.choices.push_back(std::move(d));
    out.error = e.error;
    out.error_message = e.error_message;
  }
  if (!out.choices.empty() || st.state->all_finished())
    deliver(self, std::move(out));
}

request_actor::behavior_type request_actor_impl(request_pointer self, generate_request request, output_sink sink,
                                                scheduler_actor scheduler, std::shared_ptr<const detokenizer> detok,
                                                caf::actor client) {
  auto& st = self->state;
  st.state = std::make_unique<request_state>(request, std::move(detok));
  st.last_token_time.resize(size_t(st.state->n()));
  st.request = std::move(request);
  st.sink = std::move(sink);
  st.scheduler = scheduler;
  st.client = client;
  self->monitor(scheduler);
  if (client)
    self->monitor(client);
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source == st.scheduler.address())
      abort_now(self, engine_errc::shutting_down, "the engine stopped before the request finished", false);
    else
      abort_now(self, engine_errc::cancelled, "the client went away", true);
  });
  if (st.request.deadline != engine_clock::time_point::max()) {
    auto left = st.request.deadline - engine_clock::now();
    if (left < engine_clock::duration::zero())
      left = engine_clock::duration::zero();
    self->delayed_send(self, std::chrono::duration_cast<std::chrono::microseconds>(left), cancel_atom_v,
                       int32_t(engine_errc::deadline_exceeded));
  }
  return {
      [=](const token_event& e) { on_event(self, e); },
      [=](cancel_atom, int32_t code) {
        auto errc = engine_errc(code);
        abort_now(self, errc,
                  errc == engine_errc::deadline_exceeded ? "the request's deadline passed" : "cancelled", true);
      },
  };
}

} // namespace

request_actor spawn_request_actor(caf::actor_system& system, generate_request request, output_sink sink,
                                  scheduler_actor scheduler, std::shared_ptr<const detokenizer> detok,
                                  caf::actor client) {
  return system.spawn(request_actor_impl, std::move(request), std::move(sink), std::move(scheduler),
                      std::move(detok), std::move(client));
}

} // namespace actorserve
