#pragma once
// The engine as CAF actors, for applications that embed it in their own actor system (the
// plain C++ API is actors/engine.hpp). Defines the atoms, the type-ID block `actorserve`
// (register it on every node: `register_engine_types(cfg)`), an `inspect` for every message,
// and the typed interfaces of the four actors:
//
//   request actor   one per request: request_state, detokenization, stop strings, the sink
//   scheduler       one per replica: scheduler_policy, continuous batching, the step loop
//   kv manager      one per replica: kv_manager (block pool, prefix cache), one round trip/step
//   executor        one per device, detached: executor_core and the backend
//
// An embedding application spawns an engine with `spawn_engine` and sends the scheduler
// `(generate_atom, generate_request, caf::actor receiver)`; the receiver gets `request_output`
// messages, the last one with `finished` set.

#include "actors/engine.hpp"
#include "actors/protocol.hpp"

#include <caf/all.hpp>

namespace actorserve {
struct engine_shared;
}

CAF_BEGIN_TYPE_ID_BLOCK(actorserve, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(actorserve, (actorserve::generate_request))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::request_output))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::submit_result))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::engine_stats))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::executor_info))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::step_plan))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::step_result))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::capacity_request))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::capacity_reply))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::token_event))
  CAF_ADD_TYPE_ID(actorserve, (actorserve::kv_snapshot))
  CAF_ADD_ATOM(actorserve, actorserve, generate_atom, "generate")
  CAF_ADD_ATOM(actorserve, actorserve, admit_atom, "admit")
  CAF_ADD_ATOM(actorserve, actorserve, cancel_atom, "cancel")
  CAF_ADD_ATOM(actorserve, actorserve, finish_atom, "finish")
  CAF_ADD_ATOM(actorserve, actorserve, stats_atom, "stats")
  CAF_ADD_ATOM(actorserve, actorserve, step_atom, "step")
  CAF_ADD_ATOM(actorserve, actorserve, capacity_atom, "capacity")
  CAF_ADD_ATOM(actorserve, actorserve, info_atom, "info")
  CAF_ADD_ATOM(actorserve, actorserve, reset_atom, "reset")
  CAF_ADD_ATOM(actorserve, actorserve, kv_export_atom, "kvexport")
CAF_END_TYPE_ID_BLOCK(actorserve)

namespace actorserve {

// ---- inspect: every message and every struct inside one -----------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampling_params& x) {
  return f(caf::meta::type_name("sampling_params"), x.temperature, x.top_p, x.top_k, x.min_p, x.repetition_penalty,
           x.presence_penalty, x.frequency_penalty, x.seed, x.logprobs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_request& x) {
  return f(caf::meta::type_name("generate_request"), x.id, x.prompt_token_ids, x.sampling, x.has_seed, x.max_tokens,
           x.min_tokens, x.stop_token_ids, x.stop, x.include_stop_str_in_output, x.ignore_eos, x.skip_special_tokens,
           x.detokenize, x.n, x.priority, x.arrival_time, x.deadline, x.resume_output_token_ids);
}

/// Logprobs may be -inf: they travel as bit patterns (CAF 0.17 cannot serialize non-finite
/// floats between nodes).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  int32_t bits = float_bits(x.logprob);
  std::vector<int32_t> top_tokens, top_bits;
  for (const auto& [token, lp] : x.top) {
    top_tokens.push_back(token);
    top_bits.push_back(float_bits(lp));
  }
  return f(caf::meta::type_name("token_logprob"), x.token, bits, top_tokens, top_bits,
           caf::meta::load_callback([&]() -> caf::error {
             x.logprob = bits_float(bits);
             x.top.clear();
             for (size_t i = 0; i < top_tokens.size() && i < top_bits.size(); ++i)
               x.top.emplace_back(top_tokens[i], bits_float(top_bits[i]));
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, choice_delta& x) {
  return f(caf::meta::type_name("choice_delta"), x.index, x.token_ids, x.text, x.logprobs, x.finish, x.stop_str,
           x.stop_token);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_metrics& x) {
  return f(caf::meta::type_name("request_metrics"), x.queue_time_s, x.ttft_s, x.e2e_s, x.inter_token_s,
           x.num_preemptions, x.num_cached_prompt_tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_counts& x) {
  return f(caf::meta::type_name("usage_counts"), x.prompt_tokens, x.completion_tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_output& x) {
  return f(caf::meta::type_name("request_output"), x.request_id, x.choices, x.finished, x.error, x.error_message,
           x.usage, x.metrics);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_result& x) {
  return f(caf::meta::type_name("submit_result"), x.request_id, x.error, x.message);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, engine_stats& x) {
  return f(caf::meta::type_name("engine_stats"), x.num_running, x.num_waiting, x.num_swapped, x.kv_usage,
           x.num_blocks, x.num_free_blocks, x.prefix_cache_queries, x.prefix_cache_hits, x.num_preemptions,
           x.prompt_tokens, x.generation_tokens, x.num_steps, x.num_finished_requests, x.num_executor_failures,
           x.draining, x.mean_schedule_us, x.mean_step_us);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_transfer_layout& x) {
  return f(caf::meta::type_name("kv_transfer_layout"), x.num_layers, x.num_kv_heads, x.head_dim, x.dtype,
           x.element_bytes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_snapshot& x) {
  return f(caf::meta::type_name("kv_snapshot"), x.token_ids, x.layout, x.block_size, x.data, x.error);
}
/// The payload is shared in-process; a remote executor gets a copy.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_import& x) {
  std::string data = x.data ? *x.data : std::string();
  return f(caf::meta::type_name("kv_import"), x.seq_id, x.num_tokens, x.data_tokens, data,
           caf::meta::load_callback([&]() -> caf::error {
             x.data = std::make_shared<const std::string>(std::move(data));
             return caf::none;
           }));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, executor_info& x) {
  return f(caf::meta::type_name("executor_info"), x.name, x.vocab_size, x.max_position_embeddings, x.eos_token_ids,
           x.num_blocks, x.num_host_blocks, x.block_size, x.error, x.kv_transfer, x.kv_layout);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_copy& x) {
  return f(caf::meta::type_name("block_copy"), x.src, x.dst);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_table_update& x) {
  return f(caf::meta::type_name("block_table_update"), x.seq_id, x.start, x.blocks);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_sequence& x) {
  return f(caf::meta::type_name("new_sequence"), x.seq_id, x.sampling, x.token_ids, x.prompt_len, x.num_computed);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduled_sequence& x) {
  return f(caf::meta::type_name("scheduled_sequence"), x.seq_id, x.num_computed, x.num_new, x.needs_logits);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_plan& x) {
  return f(caf::meta::type_name("step_plan"), x.step_id, x.dropped, x.added, x.tables, x.swap_out, x.swap_in,
           x.copies, x.imports, x.seqs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampled_wire& x) {
  return f(caf::meta::type_name("sampled_wire"), x.seq_id, x.token, x.logprob_bits, x.top_tokens, x.top_logprob_bits);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_result& x) {
  return f(caf::meta::type_name("step_result"), x.step_id, x.sampled, x.error, x.execute_us);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_commit& x) {
  return f(caf::meta::type_name("kv_commit"), x.seq_id, x.token_ids);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_fork& x) {
  return f(caf::meta::type_name("kv_fork"), x.parent_id, x.child_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_need& x) {
  return f(caf::meta::type_name("kv_need"), x.seq_id, x.num_computed, x.num_tokens_after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_admit& x) {
  return f(caf::meta::type_name("kv_admit"), x.seq_id, x.token_ids, x.num_tokens, x.num_computed, x.max_new_tokens,
           x.swapped, x.imported_tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capacity_request& x) {
  return f(caf::meta::type_name("capacity_request"), x.free_seqs, x.commits, x.forks, x.running, x.admit,
           x.preempt_by_swap, x.watermark_blocks);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_preempted& x) {
  return f(caf::meta::type_name("kv_preempted"), x.seq_id, x.swapped, x.never_fits);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_admitted& x) {
  return f(caf::meta::type_name("kv_admitted"), x.seq_id, x.num_cached_tokens, x.num_tokens_after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capacity_reply& x) {
  return f(caf::meta::type_name("capacity_reply"), x.updates, x.preempted, x.admitted, x.copies, x.swap_out,
           x.swap_in, x.num_blocks, x.num_free_blocks, x.prefix_cache_queries, x.prefix_cache_hits, x.cpu_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, choice_tokens& x) {
  return f(caf::meta::type_name("choice_tokens"), x.index, x.tokens, x.finish, x.stop_token);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_event& x) {
  return f(caf::meta::type_name("token_event"), x.request_id, x.choices, x.error, x.error_message,
           x.first_scheduled_us, x.num_cached_prompt_tokens, x.num_preemptions);
}

// ---- typed interfaces -----------------------------------------------------------------------

/// One per request; spawned by the engine (or the scheduler, for `generate_atom`).
using request_actor = caf::typed_actor<
    // Tokens, finish decisions or a failure of this request, from the scheduler.
    caf::reacts_to<token_event>,
    // Abort now with this engine_errc (client gone, deadline): finishes the stream at once.
    caf::reacts_to<cancel_atom, int32_t>>;

/// One per device, detached: owns the backend. May live in another process.
using executor_actor = caf::typed_actor<
    // What the backend is: vocabulary, EOS ids, KV cache shape (or why it failed to load).
    caf::replies_to<info_atom>::with<executor_info>,
    // Runs one step; a failure comes back as step_result::error.
    caf::replies_to<step_atom, step_plan>::with<step_result>,
    // Forgets every sequence (a new scheduler attaches).
    caf::replies_to<reset_atom>::with<int32_t>,
    // The K/V of a sequence's computed tokens (migration); kv_snapshot::error when it cannot.
    caf::replies_to<kv_export_atom, uint64_t>::with<kv_snapshot>>;

/// One per replica: the block pool. The scheduler's single round trip per iteration.
using kv_manager_actor = caf::typed_actor<
    caf::replies_to<capacity_atom, capacity_request>::with<capacity_reply>>;

/// One per replica: continuous batching.
using scheduler_actor = caf::typed_actor<
    // A prepared request (see engine::submit) and its request actor.
    caf::reacts_to<admit_atom, generate_request, request_actor>,
    // Embedding entry point: validates, spawns a request actor that sends `request_output`
    // messages to the receiver, and answers with the request id or the reason for refusal.
    caf::replies_to<generate_atom, generate_request, caf::actor>::with<submit_result>,
    // Aborts a request (request id, engine_errc, message); its actor gets a final event.
    caf::reacts_to<cancel_atom, uint64_t, int32_t, std::string>,
    // A choice matched a stop string (request id, choice index): stop computing it.
    caf::reacts_to<finish_atom, uint64_t, int32_t>,
    // The latest statistics.
    caf::replies_to<stats_atom>::with<engine_stats>,
    // The K/V of a running request's sequence (request id; n == 1), from the executor.
    caf::replies_to<kv_export_atom, uint64_t>::with<kv_snapshot>>;

/// Adds actorserve's message types to a CAF configuration (every node, before the system starts).
void register_engine_types(caf::actor_system_config& cfg);

/// Sets middleman heartbeats and timeouts so a frozen or lost peer is noticed within seconds,
/// and the application identifier that keeps incompatible peers out.
void configure_engine_middleman(caf::actor_system_config& cfg);

struct engine_handles {
  scheduler_actor scheduler;
  kv_manager_actor kv;
  executor_actor executor;
  executor_info info;
  std::shared_ptr<engine_shared> shared;
  bool remote_executor = false;
};

/// Spawns a detached executor that creates its backend on its own thread.
executor_actor spawn_executor(caf::actor_system& system, backend_factory make_backend);

/// Spawns a kv manager over a fresh block pool.
kv_manager_actor spawn_kv_manager(caf::actor_system& system, int32_t num_blocks, int32_t block_size,
                                  int32_t num_host_blocks, bool enable_prefix_caching);

/// Spawns the kv manager and scheduler for an executor (local or a remote proxy). Blocks until
/// the executor reports its info (`timeout`); throws std::runtime_error when it cannot.
engine_handles spawn_engine(caf::actor_system& system, const engine_config& config, executor_actor executor,
                            std::shared_ptr<const detokenizer> detok,
                            caf::duration timeout = caf::infinite);

/// Spawns the actor of one request (the engine does this; exposed for tests). `client`, when
/// set, is monitored: its loss cancels the request.
request_actor spawn_request_actor(caf::actor_system& system, generate_request request, output_sink sink,
                                  scheduler_actor scheduler, std::shared_ptr<const detokenizer> detok,
                                  caf::actor client = {});

} // namespace actorserve
