#pragma once
// The paged KV block pool of one replica: fixed-size device blocks with reference counts, a
// free list in eviction order, a prefix cache keyed by chained block hashes, and host swap
// blocks. Pure bookkeeping (no KV data lives here); no CAF, no CUDA.
//
// Free list: a block whose count drops to zero goes to the tail; allocation takes the head, so
// the least recently freed block is reused (evicted) first. A free block that is still in the
// prefix cache can be revived by a cache hit, which takes it out of the list in O(1).
//
// Prefix cache: the hash of a full block chains its parent's hash with its token ids
// (XXH3 seeded by the parent hash). A lookup hit is confirmed by comparing the stored token
// ids, so a hash collision is a miss, never a wrong block.

#include <cstdint>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace actorserve {

/// A misuse of the pool (double free, unknown block): a bug in the caller.
class block_pool_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

class block_pool {
public:
  /// Hash of a full block given its parent's hash (0 for the first block).
  using hash_function = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> block_tokens);
  static uint64_t chain_hash(uint64_t parent_hash, std::span<const int32_t> block_tokens);

  block_pool(int32_t num_blocks, int32_t block_size, int32_t num_host_blocks = 0,
             bool enable_prefix_caching = true, hash_function hash = &chain_hash);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  int32_t num_free_blocks() const { return num_free_; } // includes cached blocks with count 0
  int32_t num_used_blocks() const { return num_blocks_ - num_free_; }
  double usage() const { return num_blocks_ ? double(num_used_blocks()) / num_blocks_ : 0.0; }
  bool prefix_caching() const { return prefix_caching_; }
  uint64_t hash(uint64_t parent_hash, std::span<const int32_t> block_tokens) const {
    return hash_(parent_hash, block_tokens);
  }

  /// A block with count 1, taken from the head of the free list (its cache entry, if any, is
  /// dropped). -1 when none is free.
  int32_t allocate();
  /// Adds a reference; a free block (count 0, revived by a cache hit) leaves the free list.
  void retain(int32_t block);
  /// Drops a reference; at zero the block goes to the tail of the free list, staying in the
  /// prefix cache until reused. Throws block_pool_error when the count is already zero.
  void release(int32_t block);
  int32_t ref_count(int32_t block) const;

  /// The cached block holding exactly `block_tokens` under `hash`, or -1.
  int32_t find_cached(uint64_t hash, std::span<const int32_t> block_tokens) const;
  /// Records a full, computed block under `hash`. False (and nothing recorded) when caching is
  /// off, the block is already cached, or another block holds the hash.
  bool cache_block(int32_t block, uint64_t hash, std::span<const int32_t> block_tokens);
  bool is_cached(int32_t block) const;
  /// Forgets a block's cache entry (its contents are no longer trustworthy).
  void uncache(int32_t block);
  int32_t num_cached_blocks() const { return int32_t(cache_.size()); }

  int32_t num_host_blocks() const { return int32_t(host_free_flag_.size()); }
  int32_t num_free_host_blocks() const { return int32_t(host_free_.size()); }
  int32_t allocate_host(); // -1 when none is free
  void release_host(int32_t host_block); // throws block_pool_error on a double free

  /// Throws block_pool_error if the free list, counts and cache disagree (tests).
  void check_invariants() const;
  /// Block ids of the free list, head (next to be reused) first (tests).
  std::vector<int32_t> free_list() const;

private:
  void check_id(int32_t block) const;
  void unlink(int32_t block);
  void push_tail(int32_t block);

  int32_t num_blocks_;
  int32_t block_size_;
  bool prefix_caching_;
  hash_function hash_;
  std::vector<int32_t> ref_;   // [num_blocks]
  std::vector<int32_t> prev_;  // free-list links, -1 at the ends
  std::vector<int32_t> next_;
  std::vector<uint8_t> in_free_list_;
  int32_t head_ = -1;
  int32_t tail_ = -1;
  int32_t num_free_ = 0;
  std::vector<uint64_t> block_hash_;      // [num_blocks]: valid where has_hash_
  std::vector<uint8_t> has_hash_;
  std::vector<int32_t> block_tokens_;     // [num_blocks, block_size]: tokens of cached blocks
  std::unordered_map<uint64_t, int32_t> cache_; // hash -> block
  std::vector<int32_t> host_free_;        // stack of free host blocks
  std::vector<uint8_t> host_free_flag_;
};

} // namespace actorserve
