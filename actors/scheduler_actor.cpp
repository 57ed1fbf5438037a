// The scheduler actor: owns the scheduler_policy of one replica and runs the step loop. Each
// iteration: propose -> one round trip with the kv manager -> build -> one round trip with the
// executor -> apply -> token events to request actors. Requests, cancels and stop-string
// finishes arrive between those round trips; the policy tolerates that by design.
#include "actors/cpu_time.hpp"
#include "actors/engine_actors.hpp"
#include "actors/engine_shared.hpp"
#include "actors/scheduler_policy.hpp"

#include <unordered_map>

namespace actorserve {

namespace {

struct scheduler_state {
  std::unique_ptr<scheduler_policy> policy;
  kv_manager_actor kv;
  executor_actor executor;
  caf::duration step_timeout = caf::infinite;
  std::shared_ptr<engine_shared> shared;
  std::shared_ptr<const detokenizer> detok;
  std::unordered_map<uint64_t, request_actor> requests;
  bool busy = false;            // an iteration is in flight
  std::string executor_lost;    // non-empty: the executor is gone, and why
  capacity_reply last_kv;       // usage and prefix-cache counters
  int64_t cpu_ns = 0;           // scheduler + kv manager CPU time, all steps
  int64_t execute_us = 0;
  int64_t num_executor_failures = 0;
  static inline const char* name = "actorserve.scheduler";
};

using scheduler_pointer = scheduler_actor::stateful_pointer<scheduler_state>;

void iterate(scheduler_pointer self);

void publish(scheduler_pointer self) {
  auto& st = self->state;
  const scheduler_policy& p = *st.policy;
  st.shared->scheduler_unadmitted.store(p.num_unadmitted_requests());
  std::lock_guard<std::mutex> lock(st.shared->stats_mutex);
  engine_stats& s = st.shared->stats;
  s.num_running = p.num_running();
  s.num_waiting = p.num_waiting();
  s.num_swapped = p.num_swapped();
  s.num_blocks = st.last_kv.num_blocks;
  s.num_free_blocks = st.last_kv.num_free_blocks;
  s.kv_usage = s.num_blocks ? double(s.num_blocks - s.num_free_blocks) / s.num_blocks : 0.0;
  s.prefix_cache_queries = st.last_kv.prefix_cache_queries;
  s.prefix_cache_hits = st.last_kv.prefix_cache_hits;
  s.num_preemptions = p.num_preemptions();
  s.prompt_tokens = p.num_prompt_tokens();
  s.generation_tokens = p.num_generation_tokens();
  s.num_steps = p.num_steps();
  s.num_finished_requests = p.num_finished_requests();
  s.num_executor_failures = st.num_executor_failures;
  s.mean_schedule_us = s.num_steps ? st.cpu_ns * 1e-3 / double(s.num_steps) : 0.0;
  s.mean_step_us = s.num_steps ? double(st.execute_us) / double(s.num_steps) : 0.0;
}

void dispatch(scheduler_pointer self) {
  auto& st = self->state;
  for (auto& e : st.policy->take_events()) {
    uint64_t id = e.request_id;
    auto it = st.requests.find(id);
    if (it == st.requests.end())
      continue;
    self->send(it->second, std::move(e));
    if (!st.policy->has_request(id))
      st.requests.erase(it);
  }
}

void abort_all(scheduler_pointer self, engine_errc code, const std::string& message) {
  auto& st = self->state;
  std::vector<uint64_t> ids;
  for (const auto& [id, actor] : st.requests)
    ids.push_back(id);
  for (uint64_t id : ids)
    st.policy->abort_request(id, code, message);
  dispatch(self);
  publish(self);
}

void admit(scheduler_pointer self, generate_request&& req, const request_actor& actor) {
  auto& st = self->state;
  auto refuse = [&](engine_errc code, std::string message) {
    token_event e;
    e.request_id = req.id;
    e.error = code;
    e.error_message = std::move(message);
    self->send(actor, std::move(e));
  };
  if (!st.executor_lost.empty())
    return refuse(engine_errc::executor_failed, st.executor_lost);
  if (st.policy->has_request(req.id))
    return refuse(engine_errc::invalid_request, "request id " + std::to_string(req.id) + " is already in use");
  if (st.policy->num_unadmitted_requests() >= st.shared->config.max_waiting_requests)
    return refuse(engine_errc::overloaded, "the engine is overloaded; retry later");
  uint64_t id = req.id;
  st.policy->add_request(req);
  st.requests[id] = actor;
  publish(self);
  iterate(self);
}

void finish_iteration(scheduler_pointer self) {
  auto& st = self->state;
  dispatch(self);
  publish(self);
  st.busy = false;
  iterate(self);
}

void run_step(scheduler_pointer self, step_plan plan) {
  auto& st = self->state;
  self->request(st.executor, st.step_timeout, step_atom_v, std::move(plan))
      .then(
          [=](step_result& result) {
            auto& st = self->state;
            st.execute_us += result.execute_us;
            if (!result.error.empty())
              ++st.num_executor_failures;
            int64_t start = thread_cpu_ns();
            st.policy->apply(result);
            dispatch(self); // token events to request actors count as scheduler work
            st.cpu_ns += thread_cpu_ns() - start;
            finish_iteration(self);
          },
          [=](caf::error& err) {
            // Unreachable or timed out: the step counts as failed, its sequences are retried.
            auto& st = self->state;
            ++st.num_executor_failures;
            step_result failed;
            failed.error = "the executor did not answer: " + to_string(err);
            st.policy->apply(failed);
            finish_iteration(self);
          });
}

void iterate(scheduler_pointer self) {
  auto& st = self->state;
  if (st.busy || !st.executor_lost.empty() || !st.policy->has_work())
    return;
  st.busy = true;
  int64_t start = thread_cpu_ns();
  capacity_request request = st.policy->propose();
  st.cpu_ns += thread_cpu_ns() - start;
  self->request(st.kv, caf::infinite, capacity_atom_v, std::move(request))
      .then(
          [=](capacity_reply& reply) {
            auto& st = self->state;
            int64_t start = thread_cpu_ns();
            step_plan plan = st.policy->build(reply);
            st.cpu_ns += thread_cpu_ns() - start + reply.cpu_ns;
            st.last_kv = std::move(reply);
            bool has_effects = !plan.seqs.empty() || !plan.dropped.empty() || !plan.copies.empty() || !plan.imports.empty() ||
                               !plan.swap_in.empty() || !plan.swap_out.empty();
            if (has_effects) {
              run_step(self, std::move(plan));
              return;
            }
            dispatch(self);
            publish(self);
            st.busy = false;
            // Nothing could run: wait for the next message unless frees are still pending.
            if (st.policy->has_housekeeping())
              iterate(self);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            st.busy = false;
            abort_all(self, engine_errc::executor_failed, "internal error in the KV block manager: " + to_string(err));
          });
}

scheduler_actor::behavior_type scheduler_impl(scheduler_pointer self, scheduler_config config,
                                              kv_manager_actor kv, executor_actor executor, bool remote,
                                              std::shared_ptr<engine_shared> shared,
                                              std::shared_ptr<const detokenizer> detok) {
  auto& st = self->state;
  st.policy = std::make_unique<scheduler_policy>(std::move(config));
  st.kv = kv;
  st.executor = executor;
  st.shared = std::move(shared);
  st.detok = std::move(detok);
  if (remote)
    st.step_timeout = caf::duration{st.shared->config.remote_timeout};
  self->monitor(executor);
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source != st.executor.address())
      return;
    st.executor_lost = "the executor is gone (" + to_string(msg.reason) + ")";
    abort_all(self, engine_errc::executor_failed, st.executor_lost);
  });
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    abort_all(self, engine_errc::shutting_down, "the engine is shutting down");
    self->quit(msg.reason);
  });
  return {
      [=](admit_atom, generate_request& req, const request_actor& actor) {
        self->state.shared->pending_admits.fetch_sub(1);
        admit(self, std::move(req), actor);
      },
      [=](generate_atom, generate_request& req, const caf::actor& receiver) -> submit_result {
        auto& st = self->state;
        submit_result result = st.shared->prepare(req);
        if (!result)
          return result;
        st.shared->pending_admits.fetch_sub(1);
        auto sink = st.shared->track(
            [receiver](request_output&& out) { caf::anon_send(receiver, std::move(out)); }, st.shared);
        auto actor = spawn_request_actor(self->system(), req, std::move(sink), caf::actor_cast<scheduler_actor>(self),
                                         st.detok, receiver);
        admit(self, std::move(req), actor);
        return result;
      },
      [=](cancel_atom, uint64_t id, int32_t code, const std::string& message) {
        auto& st = self->state;
        st.policy->abort_request(id, engine_errc(code), message);
        dispatch(self);
        st.requests.erase(id);
        publish(self);
        iterate(self);
      },
      [=](finish_atom, uint64_t id, int32_t choice) {
        auto& st = self->state;
        st.policy->finish_choice(id, choice);
        if (!st.policy->has_request(id))
          st.requests.erase(id);
        iterate(self);
      },
      [=](stats_atom) -> engine_stats { return self->state.shared->snapshot(); },
      [=](kv_export_atom, uint64_t request_id) -> caf::result<kv_snapshot> {
        auto& st = self->state;
        kv_snapshot refused;
        const uint64_t seq_id = st.policy->exportable_sequence(request_id, refused.error);
        if (seq_id == 0)
          return refused;
        // The executor answers after any step in flight: the snapshot is its view then.
        auto rp = self->make_response_promise<kv_snapshot>();
        const caf::duration timeout = st.step_timeout == caf::infinite ? caf::duration{std::chrono::seconds(60)}
                                                                       : st.step_timeout;
        self->request(st.executor, timeout, kv_export_atom_v, seq_id)
            .then([=](kv_snapshot& snap) mutable { rp.deliver(std::move(snap)); },
                  [=](caf::error& err) mutable {
                    kv_snapshot failed;
                    failed.error = "the executor did not export: " + to_string(err);
                    rp.deliver(std::move(failed));
                  });
        return rp;
      },
  };
}

} // namespace

void register_engine_types(caf::actor_system_config& cfg) { cfg.add_message_types<caf::id_block::actorserve>(); }

void configure_engine_middleman(caf::actor_system_config& cfg) {
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(5)});
  cfg.set("middleman.app-identifiers", std::vector<std::string>{"actorserve-engine-v1"});
}

engine_handles spawn_engine(caf::actor_system& system, const engine_config& config, executor_actor executor,
                            std::shared_ptr<const detokenizer> detok, caf::duration timeout) {
  engine_handles h;
  h.executor = executor;
  caf::scoped_actor self{system};
  std::string problem;
  self->request(executor, timeout, info_atom_v)
      .receive([&](executor_info& info) { h.info = std::move(info); },
               [&](caf::error& err) { problem = "the executor did not answer: " + to_string(err); });
  if (problem.empty() && !h.info.error.empty())
    problem = h.info.error;
  if (problem.empty())
    self->request(executor, timeout, reset_atom_v)
        .receive([](int32_t) {}, [&](caf::error& err) { problem = "the executor did not reset: " + to_string(err); });
  if (!problem.empty())
    throw std::runtime_error(problem);
  if (h.info.num_blocks < 1 || h.info.block_size < 1)
    throw std::runtime_error("the executor reports an empty KV cache");

  h.shared = std::make_shared<engine_shared>();
  h.shared->config = config;
  int32_t max_model_len = h.info.max_position_embeddings > 0 ? h.info.max_position_embeddings : 4096;
  if (config.max_model_len > 0)
    max_model_len = std::min(max_model_len, config.max_model_len);
  int32_t watermark_blocks = int32_t(config.watermark * h.info.num_blocks);
  h.shared->limits = {max_model_len, h.info.vocab_size, h.info.num_blocks, h.info.block_size, watermark_blocks,
                      config.max_num_seqs, detok != nullptr};
  {
    std::lock_guard<std::mutex> lock(h.shared->stats_mutex);
    h.shared->stats.num_blocks = h.info.num_blocks;
    h.shared->stats.num_free_blocks = h.info.num_blocks;
  }

  scheduler_config sc;
  sc.max_num_seqs = config.max_num_seqs;
  sc.max_num_batched_tokens = config.max_num_batched_tokens;
  sc.max_num_partial_prefills = config.max_num_partial_prefills;
  sc.max_model_len = max_model_len;
  sc.block_size = h.info.block_size;
  sc.watermark_blocks = watermark_blocks;
  sc.enable_prefix_caching = config.enable_prefix_caching;
  sc.preemption = config.preemption;
  if (config.preemption == preemption_mode::swap && h.info.num_host_blocks == 0)
    sc.preemption = preemption_mode::recompute; // no host blocks to swap to
  sc.policy = config.policy;
  sc.eos_token_ids = h.info.eos_token_ids;
  h.remote_executor = executor.node() != system.node();
  h.kv = spawn_kv_manager(system, h.info.num_blocks, h.info.block_size, h.info.num_host_blocks,
                          config.enable_prefix_caching);
  h.scheduler = system.spawn(scheduler_impl, std::move(sc), h.kv, executor, h.remote_executor, h.shared, detok);
  return h;
}

} // namespace actorserve
