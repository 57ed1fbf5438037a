#pragma once
// The capacity decision of one replica: which sequences' next tokens fit in KV memory. Owns
// the block pool and every sequence's block table. The scheduler's micro-batch decision (token
// budget, chunking, sequence cap) proposes; this answers in one call per iteration
// (`process`), which the KV-block-manager actor wraps as its single round trip. No CAF.
//
// Order of work in `process`: commit (prefix cache), free, fork, grow running sequences in
// order (preempting from the back of the list when blocks run out), then admit waiting or
// swapped sequences while they fit above the watermark, but only if nothing was preempted.

#include "actors/block_pool.hpp"
#include "actors/protocol.hpp"

#include <unordered_map>

namespace actorserve {

class kv_manager {
public:
  kv_manager(int32_t num_blocks, int32_t block_size, int32_t num_host_blocks, bool enable_prefix_caching,
             block_pool::hash_function hash = &block_pool::chain_hash);

  capacity_reply process(const capacity_request& request);

  const block_pool& pool() const { return pool_; }
  /// The device block table of a sequence (empty when unknown or swapped out).
  const std::vector<int32_t>& block_table(uint64_t seq_id) const;
  bool is_swapped(uint64_t seq_id) const;
  int32_t num_sequences() const { return int32_t(seqs_.size()); }
  /// Host blocks holding a swapped sequence (tests).
  const std::vector<int32_t>& host_table(uint64_t seq_id) const;
  /// Throws block_pool_error if reference counts disagree with the tables (tests).
  void check_invariants() const;

private:
  struct seq_blocks {
    std::vector<int32_t> table;      // device blocks
    std::vector<int32_t> host_table; // host blocks while swapped
    uint64_t last_hash = 0;          // hash of the last committed block
    int32_t num_committed_blocks = 0;
  };

  int32_t blocks_for(int32_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }
  void free_seq(uint64_t seq_id);
  void release_table(seq_blocks& s);
  void commit(const kv_commit& c);
  /// Blocks `need` requires now (new ones plus a copy-on-write target).
  int32_t blocks_required(const seq_blocks& s, const kv_need& need) const;
  void grow(uint64_t seq_id, seq_blocks& s, const kv_need& need, capacity_reply& reply);
  void preempt(uint64_t seq_id, bool by_swap, bool never_fits, capacity_reply& reply);
  bool admit(const kv_admit& a, int32_t watermark_blocks, capacity_reply& reply);

  int32_t block_size_;
  block_pool pool_;
  std::unordered_map<uint64_t, seq_blocks> seqs_;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
};

} // namespace actorserve
