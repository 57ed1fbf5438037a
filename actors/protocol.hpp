#pragma once
// The value messages between the engine's parts, as plain structs (no CAF here; their inspect
// functions and the type-ID block are in actors/engine_actors.hpp):
//
//   scheduler -> kv manager : capacity_request   (one round trip per iteration)
//   kv manager -> scheduler : capacity_reply
//   scheduler -> executor   : step_plan          (differences only after a sequence is added)
//   executor -> scheduler   : step_result
//   scheduler -> request    : token_event
//
// Floats that may be -inf (logprobs) travel as their bit patterns (`float_bits`): CAF 0.17
// cannot serialize non-finite floats between nodes.

#include "actors/engine.hpp"
#include "model/sampling.hpp"
#include "model/step.hpp"

#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace actorserve {

inline int32_t float_bits(float x) { return std::bit_cast<int32_t>(x); }
inline float bits_float(int32_t x) { return std::bit_cast<float>(x); }

// ---- scheduler <-> kv manager -------------------------------------------------------------

/// Tokens of a sequence's blocks that became full and computed since the last commit, starting
/// at its first uncommitted block (a whole number of blocks): the kv manager hashes and caches them.
struct kv_commit {
  uint64_t seq_id = 0;
  std::vector<int32_t> token_ids;
};

/// A child sequence starts sharing all of its parent's blocks (n > 1).
struct kv_fork {
  uint64_t parent_id = 0;
  uint64_t child_id = 0;
};

/// A running sequence will hold `num_tokens_after` tokens in its blocks after this step, of
/// which `num_computed` are already there.
struct kv_need {
  uint64_t seq_id = 0;
  int32_t num_computed = 0;
  int32_t num_tokens_after = 0;
};

/// A waiting (or swapped) sequence to admit, with `max_new_tokens` of this step's budget.
struct kv_admit {
  uint64_t seq_id = 0;
  std::vector<int32_t> token_ids; // all its tokens (prompt, then outputs); for the prefix lookup
  int32_t num_tokens = 0;
  int32_t num_computed = 0;       // tokens in its host blocks when swapped; else 0
  int32_t max_new_tokens = 0;
  bool swapped = false; // resume from host blocks instead of a prefix lookup
  int32_t imported_tokens = 0; // > 0: its first tokens' K/V arrive with the plan (migration):
                               // fresh blocks, no prefix lookup, admitted as if cached
};

struct capacity_request {
  std::vector<uint64_t> free_seqs; // finished, aborted or recompute-preempted by the scheduler
  std::vector<kv_commit> commits;
  std::vector<kv_fork> forks;
  std::vector<kv_need> running;    // most important first: victims are taken from the back
  std::vector<kv_admit> admit;     // in admission order; admission stops at the first misfit
  bool preempt_by_swap = false;
  int32_t watermark_blocks = 0;    // admission keeps this many blocks free
};

/// Replace `block_table[start:]` of a sequence by `blocks` (appends, copy-on-write, swap-in).
struct block_table_update {
  uint64_t seq_id = 0;
  int32_t start = 0;
  std::vector<int32_t> blocks;
};

struct kv_preempted {
  uint64_t seq_id = 0;
  bool swapped = false; // false: its blocks were freed and it must be recomputed
  bool never_fits = false; // it alone does not fit in the whole pool
};

struct kv_admitted {
  uint64_t seq_id = 0;
  int32_t num_cached_tokens = 0; // tokens found in the prefix cache (0 for a swap-in)
  int32_t num_tokens_after = 0;  // blocks cover this many tokens now
};

struct capacity_reply {
  std::vector<block_table_update> updates;
  std::vector<kv_preempted> preempted;
  std::vector<kv_admitted> admitted; // a prefix of the admit list
  std::vector<block_copy> copies;    // copy-on-write, device -> device
  std::vector<block_copy> swap_out;  // device -> host
  std::vector<block_copy> swap_in;   // host -> device
  int32_t num_blocks = 0;
  int32_t num_free_blocks = 0;
  int64_t prefix_cache_queries = 0; // cumulative, in tokens
  int64_t prefix_cache_hits = 0;
  int64_t cpu_ns = 0; // thread CPU time the kv manager spent on this request
};

// ---- scheduler <-> executor ---------------------------------------------------------------

/// A sequence the executor does not know yet (new, a forked choice, or resumed by recompute).
struct new_sequence {
  uint64_t seq_id = 0;
  sampling_params sampling;
  std::vector<int32_t> token_ids; // prompt, then the outputs sampled so far
  int32_t prompt_len = 0;
  int32_t num_computed = 0;       // already in its blocks (prefix-cache hit, or shared by a fork)
};

/// K/V of a migrated sequence's first `num_tokens` positions, written into its (fresh) blocks
/// before the step; `data` is in the backend's kv_transfer_layout for `data_tokens` tokens.
struct kv_import {
  uint64_t seq_id = 0;
  int32_t num_tokens = 0;
  int32_t data_tokens = 0;
  std::shared_ptr<const std::string> data;
};

struct scheduled_sequence {
  uint64_t seq_id = 0;
  int32_t num_computed = 0;
  int32_t num_new = 0;
  bool needs_logits = false;
};

struct step_plan {
  uint64_t step_id = 0;
  std::vector<uint64_t> dropped;          // forget these sequences first
  std::vector<new_sequence> added;
  std::vector<block_table_update> tables; // after `added`
  std::vector<block_copy> swap_out;       // run in this order, before the step
  std::vector<block_copy> swap_in;
  std::vector<block_copy> copies;
  std::vector<kv_import> imports;         // after the tables and copies, before the step
  std::vector<scheduled_sequence> seqs;   // token order; may be empty (only drops/copies)
};

struct sampled_wire {
  uint64_t seq_id = 0;
  int32_t token = -1;
  int32_t logprob_bits = 0;
  std::vector<int32_t> top_tokens;
  std::vector<int32_t> top_logprob_bits;
};

struct step_result {
  uint64_t step_id = 0;
  std::vector<sampled_wire> sampled; // one per scheduled sequence with needs_logits, in order
  std::string error;                 // non-empty: the step failed, nothing was sampled
  int64_t execute_us = 0;
};

/// What the executor reports about its backend when asked.
struct executor_info {
  std::string name;
  int32_t vocab_size = 0;
  int32_t max_position_embeddings = 0;
  std::vector<int32_t> eos_token_ids;
  int32_t num_blocks = 0;
  int32_t num_host_blocks = 0;
  int32_t block_size = 16;
  std::string error; // non-empty: the backend could not be created
  bool kv_transfer = false;       // the backend exports/imports KV (layout below)
  kv_transfer_layout kv_layout;
};

// ---- scheduler -> request actor -----------------------------------------------------------

struct choice_tokens {
  int32_t index = 0;
  std::vector<sampled_wire> tokens;
  finish_reason finish = finish_reason::none;
  int32_t stop_token = -1;
};

struct token_event {
  uint64_t request_id = 0;
  std::vector<choice_tokens> choices;
  engine_errc error = engine_errc::none; // the request failed as a whole
  std::string error_message;
  int64_t first_scheduled_us = -1; // engine_clock microseconds, on the first event after admission
  int32_t num_cached_prompt_tokens = 0;
  int32_t num_preemptions = 0;
};

inline int64_t to_us(engine_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

} // namespace actorserve
