#pragma once
// The executor's logic without CAF: owns a backend and, per live sequence, its tokens, block
// table and sampling state, and turns a step_plan (differences) into backend calls and a
// step_result. The executor actor (in this process or another) is a thin shell around it.

#include "actors/protocol.hpp"
#include "model/backend.hpp"

#include <memory>
#include <unordered_map>

namespace actorserve {

class executor_core {
public:
  explicit executor_core(std::unique_ptr<backend> b);

  executor_info info() const;
  /// Runs one plan. A failure (backend exception, inconsistent plan) comes back as
  /// step_result::error; the sequences of a failed step must be dropped and re-added.
  step_result run(const step_plan& plan);
  /// The K/V of a sequence's computed tokens, for migration (kv_snapshot::error when the
  /// sequence is unknown or the backend cannot export).
  kv_snapshot export_kv(uint64_t seq_id);
  /// Forgets every sequence (a new scheduler attached).
  void reset() { seqs_.clear(); }
  size_t num_sequences() const { return seqs_.size(); }
  backend& get_backend() { return *backend_; }

private:
  struct seq_state {
    sequence_sampling_state sampling;
    std::vector<int32_t> tokens; // prompt, then outputs
    std::vector<int32_t> block_table;
    int32_t num_computed = 0;
  };

  void run_or_throw(const step_plan& plan, step_result& result);

  std::unique_ptr<backend> backend_;
  std::unordered_map<uint64_t, seq_state> seqs_;
  step_batch batch_; // reused: no per-step allocation once warm
  std::vector<const sequence_sampling_state*> sampling_;
  std::vector<sampled_token> sampled_;
};

} // namespace actorserve
