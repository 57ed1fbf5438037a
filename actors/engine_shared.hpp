#pragma once
// State shared between the `engine` handle (any thread) and the scheduler actor: the stats
// snapshot, the counters behind the overload answer and drain, request ids and seeds. Plus the
// validation every request passes before it reaches the scheduler. No CAF.

#include "actors/engine.hpp"
#include "actors/protocol.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace actorserve {

struct request_limits {
  int32_t max_model_len = 0;
  int32_t vocab_size = 0;
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  int32_t watermark_blocks = 0;
  int32_t max_num_seqs = 0;
  bool has_detokenizer = false;
};

/// Empty when `r` is acceptable (then max_tokens is capped to what max_model_len leaves);
/// otherwise what is wrong, in words a client can act on.
std::string validate_request(generate_request& r, const request_limits& limits);

struct engine_shared {
  engine_config config;
  request_limits limits;

  mutable std::mutex stats_mutex;
  engine_stats stats; // written by the scheduler after each iteration

  std::atomic<int64_t> pending_admits{0};     // submitted, not yet seen by the scheduler
  std::atomic<int32_t> scheduler_unadmitted{0}; // in the scheduler, never admitted yet
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> next_request_id{1};
  std::atomic<uint64_t> seed_counter;

  std::mutex live_mutex;
  std::condition_variable live_changed;
  int64_t live_requests = 0; // submitted and not finished (final event not yet delivered)

  engine_shared();
  /// Validation, overload and drain checks; assigns id, seed and arrival time. On success the
  /// request counts as live and pending until the scheduler sees it.
  submit_result prepare(generate_request& r);
  /// Wraps a sink so that its final event marks the request finished.
  output_sink track(output_sink sink, const std::shared_ptr<engine_shared>& self);
  void request_finished();
  engine_stats snapshot() const;
};

} // namespace actorserve
