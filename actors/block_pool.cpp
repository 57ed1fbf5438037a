#include "actors/block_pool.hpp"

#include <xxhash.h>

#include <algorithm>
#include <string>

namespace actorserve {

uint64_t block_pool::chain_hash(uint64_t parent_hash, std::span<const int32_t> block_tokens) {
  return XXH3_64bits_withSeed(block_tokens.data(), block_tokens.size_bytes(), parent_hash);
}

block_pool::block_pool(int32_t num_blocks, int32_t block_size, int32_t num_host_blocks,
                       bool enable_prefix_caching, hash_function hash)
    : num_blocks_(num_blocks), block_size_(block_size), prefix_caching_(enable_prefix_caching),
      hash_(hash ? hash : &chain_hash) {
  if (num_blocks < 0 || block_size <= 0 || num_host_blocks < 0)
    throw block_pool_error("block_pool: invalid sizes");
  ref_.assign(num_blocks, 0);
  prev_.assign(num_blocks, -1);
  next_.assign(num_blocks, -1);
  in_free_list_.assign(num_blocks, 0);
  block_hash_.assign(num_blocks, 0);
  has_hash_.assign(num_blocks, 0);
  if (prefix_caching_)
    block_tokens_.assign(size_t(num_blocks) * block_size, 0);
  for (int32_t b = 0; b < num_blocks; ++b)
    push_tail(b);
  host_free_flag_.assign(num_host_blocks, 1);
  // Stack popped from the back: hand out low ids first, which keeps tests readable.
  for (int32_t h = num_host_blocks - 1; h >= 0; --h)
    host_free_.push_back(h);
}

void block_pool::check_id(int32_t block) const {
  if (block < 0 || block >= num_blocks_)
    throw block_pool_error("block_pool: unknown block " + std::to_string(block));
}

void block_pool::unlink(int32_t b) {
  if (prev_[b] >= 0)
    next_[prev_[b]] = next_[b];
  else
    head_ = next_[b];
  if (next_[b] >= 0)
    prev_[next_[b]] = prev_[b];
  else
    tail_ = prev_[b];
  prev_[b] = next_[b] = -1;
  in_free_list_[b] = 0;
  --num_free_;
}

void block_pool::push_tail(int32_t b) {
  prev_[b] = tail_;
  next_[b] = -1;
  if (tail_ >= 0)
    next_[tail_] = b;
  else
    head_ = b;
  tail_ = b;
  in_free_list_[b] = 1;
  ++num_free_;
}

int32_t block_pool::allocate() {
  if (head_ < 0)
    return -1;
  int32_t b = head_;
  unlink(b);
  uncache(b); // evicted: its old contents are about to be overwritten
  ref_[b] = 1;
  return b;
}

void block_pool::retain(int32_t block) {
  check_id(block);
  if (ref_[block] == 0) {
    if (!in_free_list_[block])
      throw block_pool_error("block_pool: block " + std::to_string(block) + " has count 0 but is not free");
    unlink(block);
  }
  ++ref_[block];
}

void block_pool::release(int32_t block) {
  check_id(block);
  if (ref_[block] <= 0)
    throw block_pool_error("block_pool: double free of block " + std::to_string(block));
  if (--ref_[block] == 0)
    push_tail(block);
}

int32_t block_pool::ref_count(int32_t block) const {
  check_id(block);
  return ref_[block];
}

int32_t block_pool::find_cached(uint64_t hash, std::span<const int32_t> block_tokens) const {
  if (!prefix_caching_ || int32_t(block_tokens.size()) != block_size_)
    return -1;
  auto it = cache_.find(hash);
  if (it == cache_.end())
    return -1;
  const int32_t* stored = block_tokens_.data() + size_t(it->second) * block_size_;
  if (!std::equal(block_tokens.begin(), block_tokens.end(), stored))
    return -1; // a hash collision: different tokens under the same hash
  return it->second;
}

bool block_pool::cache_block(int32_t block, uint64_t hash, std::span<const int32_t> block_tokens) {
  check_id(block);
  if (!prefix_caching_ || has_hash_[block] || int32_t(block_tokens.size()) != block_size_)
    return false;
  if (!cache_.emplace(hash, block).second)
    return false;
  has_hash_[block] = 1;
  block_hash_[block] = hash;
  std::copy(block_tokens.begin(), block_tokens.end(), block_tokens_.begin() + size_t(block) * block_size_);
  return true;
}

bool block_pool::is_cached(int32_t block) const {
  check_id(block);
  return has_hash_[block] != 0;
}

void block_pool::uncache(int32_t block) {
  check_id(block);
  if (!has_hash_[block])
    return;
  cache_.erase(block_hash_[block]);
  has_hash_[block] = 0;
}

int32_t block_pool::allocate_host() {
  if (host_free_.empty())
    return -1;
  int32_t h = host_free_.back();
  host_free_.pop_back();
  host_free_flag_[h] = 0;
  return h;
}

void block_pool::release_host(int32_t host_block) {
  if (host_block < 0 || host_block >= num_host_blocks())
    throw block_pool_error("block_pool: unknown host block " + std::to_string(host_block));
  if (host_free_flag_[host_block])
    throw block_pool_error("block_pool: double free of host block " + std::to_string(host_block));
  host_free_flag_[host_block] = 1;
  host_free_.push_back(host_block);
}

void block_pool::check_invariants() const {
  int32_t count = 0;
  int32_t prev = -1;
  for (int32_t b = head_; b >= 0; b = next_[b]) {
    if (ref_[b] != 0)
      throw block_pool_error("block_pool: block " + std::to_string(b) + " is free with count " + std::to_string(ref_[b]));
    if (prev_[b] != prev || !in_free_list_[b])
      throw block_pool_error("block_pool: broken free list at block " + std::to_string(b));
    prev = b;
    if (++count > num_blocks_)
      throw block_pool_error("block_pool: free list has a cycle");
  }
  if (count != num_free_ || prev != tail_)
    throw block_pool_error("block_pool: free count " + std::to_string(num_free_) + " but list holds " + std::to_string(count));
  for (int32_t b = 0; b < num_blocks_; ++b) {
    if (ref_[b] < 0 || (ref_[b] == 0) != bool(in_free_list_[b]))
      throw block_pool_error("block_pool: block " + std::to_string(b) + " count and free flag disagree");
  }
  for (const auto& [hash, block] : cache_) {
    if (!has_hash_[block] || block_hash_[block] != hash)
      throw block_pool_error("block_pool: cache entry of block " + std::to_string(block) + " is stale");
  }
}

std::vector<int32_t> block_pool::free_list() const {
  std::vector<int32_t> out;
  for (int32_t b = head_; b >= 0; b = next_[b])
    out.push_back(b);
  return out;
}

} // namespace actorserve
