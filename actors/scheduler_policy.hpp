#pragma once
// The micro-batch decision of one replica (vLLM v1 style): every sequence has a computed-token
// count that catches up to its token count under one token budget per step
// (`max_num_batched_tokens`) and a sequence cap (`max_num_seqs`). That one rule gives chunked
// prefill, prefix-cache skips (admission starts the count at the cached length) and resume
// after preemption (the count restarts at zero). No CAF.
//
// One iteration:  propose() -> capacity_request   (to the kv manager)
//                 build(capacity_reply) -> step_plan (to the executor)
//                 apply(step_result)                (tokens, stop checks) -> take_events()
//
// Step order: decodes of running sequences first, then their prefill chunks, then admitted
// sequences, so a long prompt never starves running decodes. At most
// `max_num_partial_prefills` sequences have an unfinished prefill at a time. Waiting
// sequences are ordered FCFS (or by priority, then arrival); when blocks run out the newest
// admitted (lowest priority) running sequence is preempted by recompute or swap.
//
// n > 1: choice 0 prefills the prompt except its last token, then forks into n sequences that
// share those blocks (copy-on-write of the partly filled block) and each compute the last
// prompt token with their own seed (seed + choice index).

#include "actors/engine.hpp"
#include "actors/protocol.hpp"

#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>

namespace actorserve {

struct scheduler_config {
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_num_partial_prefills = 1;
  int32_t max_model_len = 4096;
  int32_t block_size = 16;
  int32_t watermark_blocks = 0;
  bool enable_prefix_caching = true;
  preemption_mode preemption = preemption_mode::recompute;
  scheduling_policy policy = scheduling_policy::fcfs;
  std::vector<int32_t> eos_token_ids;
};

enum class seq_status { waiting, running, swapped };

struct request_entry;

struct sequence {
  uint64_t seq_id = 0;
  uint64_t request_id = 0;
  request_entry* request = nullptr; // stable: entries live in an unordered_map
  int32_t choice = 0;
  std::vector<int32_t> tokens; // prompt, then outputs
  int32_t prompt_len = 0;
  int32_t num_computed = 0;
  int32_t num_committed = 0;   // tokens handed to the prefix cache (whole blocks)
  seq_status status = seq_status::waiting;
  int32_t priority_key = 0;    // 0 under FCFS
  uint64_t arrival_order = 0;
  uint64_t admitted_order = 0;
  bool known_to_executor = false;
  bool fork_pending = false;   // choice 0 of an n > 1 request that has not forked yet
  bool suspect = false;        // was in a failed step; its next chunk runs alone
  int32_t num_failures = 0;    // failed steps it was part of; aborted at 3
  bool released = false;       // finished or aborted; kept only until the iteration ends
  int32_t planned_new = 0;     // tokens proposed for this iteration
  sampling_params sampling;
  // Migration by KV shipping: the first imported_tokens positions' K/V come with its first
  // admission (kv_import); cleared once handed to a plan, so a retry recomputes.
  int32_t imported_tokens = 0;
  int32_t imported_data_tokens = 0;
  std::shared_ptr<const std::string> imported_kv;

  int32_t num_tokens() const { return int32_t(tokens.size()); }
  int32_t num_outputs() const { return num_tokens() - prompt_len; }
  /// The count num_computed catches up to: all tokens, or all but the last before a fork.
  int32_t target() const { return fork_pending ? prompt_len - 1 : num_tokens(); }
};

/// A request as the scheduler tracks it (owned by scheduler_policy).
struct request_entry {
  uint64_t id = 0;
  int32_t n = 1;
  std::vector<uint64_t> seq_ids;   // [n] once forked, [1] before
  int32_t num_live = 1;            // choices not finished
  int32_t max_tokens = 0;
  int32_t min_tokens = 0;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  int64_t first_scheduled_us = -1;
  int32_t num_cached_prompt_tokens = 0;
  int32_t num_preemptions = 0;
  bool counted_admitted = false;
  uint64_t event_epoch = 0; // events_[event_slot] is this request's event when equal to the policy's epoch
  size_t event_slot = 0;
};


class scheduler_policy {
public:
  explicit scheduler_policy(scheduler_config config);

  /// Adds a validated request (prompt within max_model_len, n >= 1, has_seed resolved).
  void add_request(const generate_request& request);
  /// Aborts every choice of a request: frees its blocks in the next iteration and emits a final
  /// event with finish_reason abort and `error` (unless `error` is none and `notify` false).
  void abort_request(uint64_t request_id, engine_errc error, const std::string& message, bool notify = true);
  /// Ends one choice early (a stop string matched in the request actor): no event.
  void finish_choice(uint64_t request_id, int32_t choice);
  bool has_request(uint64_t request_id) const { return requests_.count(request_id) != 0; }

  /// True while there is anything to do: sequences to run, or blocks/sequences to free.
  bool has_work() const;
  /// True when the next iteration has frees, drops or commits to pass on even if no sequence
  /// can run.
  bool has_housekeeping() const;

  capacity_request propose();
  step_plan build(const capacity_reply& reply);
  void apply(const step_result& result);
  /// Events for request actors produced since the last call.
  std::vector<token_event> take_events();

  // statistics
  int32_t num_running() const { return int32_t(running_.size()); }
  int32_t num_waiting() const { return int32_t(waiting_.size()); }
  int32_t num_swapped() const { return int32_t(swapped_.size()); }
  int32_t num_requests() const { return int32_t(requests_.size()); }
  /// Requests never admitted yet (the queue the overload limit applies to).
  int32_t num_unadmitted_requests() const { return num_unadmitted_; }
  int64_t num_preemptions() const { return num_preemptions_; }
  int64_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int64_t num_generation_tokens() const { return num_generation_tokens_; }
  int64_t num_steps() const { return num_steps_; }
  int64_t num_finished_requests() const { return num_finished_requests_; }
  int64_t num_step_failures() const { return num_step_failures_; }
  const scheduler_config& config() const { return config_; }
  const sequence* find_sequence(uint64_t seq_id) const;
  /// The sequence whose K/V can be exported for a request (n == 1, running, known to the
  /// executor), or 0 with `why` set.
  uint64_t exportable_sequence(uint64_t request_id, std::string& why) const;

private:
  using queue_key = std::tuple<int32_t, uint64_t, int32_t, uint64_t>; // priority, arrival, choice, id

  struct planned { sequence* seq; int32_t num_new; };

  static queue_key key_of(const sequence& s) { return {s.priority_key, s.arrival_order, s.choice, s.seq_id}; }
  int32_t seats_of(const sequence& s) const;
  token_event& event_for(request_entry& r);
  void enqueue(sequence& s);
  void dequeue(sequence& s);
  void insert_running(sequence& s);
  void remove_running(sequence& s);
  void release(sequence& s);  // forget it: kv free + executor drop next iteration
  void finish_seq(sequence& s, request_entry& r);
  void preempt(sequence& s, bool swapped);
  void fork(sequence& parent, capacity_request& cap);
  void fail_step(const std::string& error);

  scheduler_config config_;
  std::unordered_map<uint64_t, std::unique_ptr<sequence>> seqs_;
  std::unordered_map<uint64_t, request_entry> requests_;
  std::vector<sequence*> running_;           // by (priority, admission): victims from the back
  std::set<std::pair<queue_key, sequence*>> waiting_;
  std::set<std::pair<queue_key, sequence*>> swapped_;
  std::vector<uint64_t> pending_free_;       // kv manager frees these next iteration
  std::vector<uint64_t> pending_drop_;       // the executor forgets these next step
  std::vector<kv_commit> pending_commits_;
  std::vector<new_sequence> pending_added_;  // forked choices, added with the next plan
  std::vector<planned> plan_running_;        // proposed for running sequences, in step order
  std::vector<std::pair<sequence*, int32_t>> plan_admit_; // candidates and their budget
  std::vector<scheduled_sequence> last_step_;
  std::vector<sequence*> last_step_seqs_;    // parallel to last_step_; released ones are skipped
  std::vector<token_event> events_;
  uint64_t event_epoch_ = 1;
  std::vector<std::unique_ptr<sequence>> graveyard_; // released this iteration, still pointed to
  uint64_t next_seq_id_ = 1;
  uint64_t next_arrival_ = 0;
  uint64_t next_admission_ = 0;
  uint64_t next_step_id_ = 1;
  int64_t num_preemptions_ = 0;
  int64_t num_prompt_tokens_ = 0;
  int64_t num_generation_tokens_ = 0;
  int64_t num_steps_ = 0;
  int64_t num_finished_requests_ = 0;
  int64_t num_step_failures_ = 0;
  int32_t num_unadmitted_ = 0;
};

} // namespace actorserve
