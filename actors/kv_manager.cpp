#include "actors/kv_manager.hpp"

#include <algorithm>
#include <string>

namespace actorserve {

namespace {
const std::vector<int32_t> no_blocks;
}

kv_manager::kv_manager(int32_t num_blocks, int32_t block_size, int32_t num_host_blocks,
                       bool enable_prefix_caching, block_pool::hash_function hash)
    : block_size_(block_size), pool_(num_blocks, block_size, num_host_blocks, enable_prefix_caching, hash) {}

const std::vector<int32_t>& kv_manager::block_table(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? no_blocks : it->second.table;
}

const std::vector<int32_t>& kv_manager::host_table(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? no_blocks : it->second.host_table;
}

bool kv_manager::is_swapped(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it != seqs_.end() && !it->second.host_table.empty();
}

void kv_manager::release_table(seq_blocks& s) {
  // Last blocks first: they go to the free list before the prefix blocks, so the prefix
  // (more likely shared by later requests) is evicted last.
  for (auto it = s.table.rbegin(); it != s.table.rend(); ++it)
    pool_.release(*it);
  s.table.clear();
  for (int32_t h : s.host_table)
    pool_.release_host(h);
  s.host_table.clear();
}

void kv_manager::free_seq(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end())
    return;
  release_table(it->second);
  seqs_.erase(it);
}

void kv_manager::commit(const kv_commit& c) {
  auto it = seqs_.find(c.seq_id);
  if (it == seqs_.end() || !pool_.prefix_caching())
    return;
  seq_blocks& s = it->second;
  for (size_t off = 0; off + block_size_ <= c.token_ids.size(); off += block_size_) {
    if (s.num_committed_blocks >= int32_t(s.table.size()))
      throw block_pool_error("kv_manager: commit past the block table of sequence " + std::to_string(c.seq_id));
    std::span<const int32_t> tokens(c.token_ids.data() + off, block_size_);
    uint64_t h = pool_.hash(s.last_hash, tokens);
    pool_.cache_block(s.table[s.num_committed_blocks], h, tokens);
    s.last_hash = h;
    ++s.num_committed_blocks;
  }
}

int32_t kv_manager::blocks_required(const seq_blocks& s, const kv_need& need) const {
  int32_t required = std::max(0, blocks_for(need.num_tokens_after) - int32_t(s.table.size()));
  int32_t write_block = need.num_computed / block_size_;
  if (need.num_tokens_after > need.num_computed && need.num_computed % block_size_ != 0 &&
      write_block < int32_t(s.table.size()) && pool_.ref_count(s.table[write_block]) > 1)
    ++required; // the partly filled block is shared (a forked choice): copy it before writing
  return required;
}

void kv_manager::grow(uint64_t seq_id, seq_blocks& s, const kv_need& need, capacity_reply& reply) {
  int32_t start = int32_t(s.table.size());
  int32_t write_block = need.num_computed / block_size_;
  if (need.num_tokens_after > need.num_computed && need.num_computed % block_size_ != 0 &&
      write_block < int32_t(s.table.size()) && pool_.ref_count(s.table[write_block]) > 1) {
    int32_t fresh = pool_.allocate();
    reply.copies.push_back({s.table[write_block], fresh});
    pool_.release(s.table[write_block]);
    s.table[write_block] = fresh;
    start = write_block;
  }
  while (int32_t(s.table.size()) < blocks_for(need.num_tokens_after))
    s.table.push_back(pool_.allocate());
  if (start < int32_t(s.table.size()))
    reply.updates.push_back({seq_id, start, {s.table.begin() + start, s.table.end()}});
}

void kv_manager::preempt(uint64_t seq_id, bool by_swap, bool never_fits, capacity_reply& reply) {
  seq_blocks& s = seqs_.at(seq_id);
  if (by_swap && !never_fits && pool_.num_free_host_blocks() >= int32_t(s.table.size())) {
    for (int32_t b : s.table) {
      int32_t h = pool_.allocate_host();
      reply.swap_out.push_back({b, h});
      s.host_table.push_back(h);
    }
    for (auto it = s.table.rbegin(); it != s.table.rend(); ++it)
      pool_.release(*it);
    s.table.clear();
    reply.preempted.push_back({seq_id, true, false});
    return;
  }
  release_table(s);
  seqs_.erase(seq_id);
  reply.preempted.push_back({seq_id, false, never_fits});
}

bool kv_manager::admit(const kv_admit& a, int32_t watermark_blocks, capacity_reply& reply) {
  if (a.swapped) {
    auto it = seqs_.find(a.seq_id);
    if (it == seqs_.end() || it->second.host_table.empty())
      throw block_pool_error("kv_manager: swap-in of unknown sequence " + std::to_string(a.seq_id));
    seq_blocks& s = it->second;
    int32_t after = std::min(a.num_tokens, a.num_computed + a.max_new_tokens);
    int32_t required = std::max(blocks_for(after), int32_t(s.host_table.size()));
    if (pool_.num_free_blocks() - required < watermark_blocks)
      return false;
    for (int32_t h : s.host_table) {
      int32_t b = pool_.allocate();
      reply.swap_in.push_back({h, b});
      s.table.push_back(b);
      pool_.release_host(h);
    }
    s.host_table.clear();
    while (int32_t(s.table.size()) < blocks_for(after))
      s.table.push_back(pool_.allocate());
    reply.updates.push_back({a.seq_id, 0, s.table});
    reply.admitted.push_back({a.seq_id, 0, after});
    return true;
  }
  if (seqs_.count(a.seq_id))
    throw block_pool_error("kv_manager: sequence " + std::to_string(a.seq_id) + " admitted twice");
  if (a.imported_tokens > 0) {
    // Its first tokens' K/V arrive with the plan: fresh blocks (a shared cached block must not
    // be overwritten), committed to the prefix cache later like computed ones.
    int32_t after = std::min(a.num_tokens, a.imported_tokens + a.max_new_tokens);
    if (pool_.num_free_blocks() - blocks_for(after) < watermark_blocks)
      return false;
    seq_blocks s;
    while (int32_t(s.table.size()) < blocks_for(after))
      s.table.push_back(pool_.allocate());
    reply.updates.push_back({a.seq_id, 0, s.table});
    reply.admitted.push_back({a.seq_id, a.imported_tokens, after});
    seqs_.emplace(a.seq_id, std::move(s));
    return true;
  }
  // Longest cached prefix of whole blocks, leaving at least one token to compute (its logits).
  std::vector<int32_t> hits;
  uint64_t parent = 0;
  int32_t num_revived = 0; // hit blocks now free: taking them shrinks the free list
  if (pool_.prefix_caching()) {
    int32_t max_blocks = std::max(0, (a.num_tokens - 1) / block_size_);
    for (int32_t i = 0; i < max_blocks && size_t(i + 1) * block_size_ <= a.token_ids.size(); ++i) {
      std::span<const int32_t> tokens(a.token_ids.data() + size_t(i) * block_size_, block_size_);
      uint64_t h = pool_.hash(parent, tokens);
      int32_t b = pool_.find_cached(h, tokens);
      if (b < 0)
        break;
      hits.push_back(b);
      num_revived += pool_.ref_count(b) == 0;
      parent = h;
    }
  }
  int32_t cached = int32_t(hits.size()) * block_size_;
  int32_t after = std::min(a.num_tokens, cached + a.max_new_tokens);
  int32_t required = blocks_for(after) - int32_t(hits.size());
  if (pool_.num_free_blocks() - num_revived - required < watermark_blocks)
    return false;
  seq_blocks s;
  for (int32_t b : hits)
    pool_.retain(b);
  s.table = std::move(hits);
  s.num_committed_blocks = int32_t(s.table.size());
  s.last_hash = parent;
  while (int32_t(s.table.size()) < blocks_for(after))
    s.table.push_back(pool_.allocate());
  if (pool_.prefix_caching()) {
    prefix_queries_ += a.num_tokens;
    prefix_hits_ += cached;
  }
  reply.updates.push_back({a.seq_id, 0, s.table});
  reply.admitted.push_back({a.seq_id, cached, after});
  seqs_.emplace(a.seq_id, std::move(s));
  return true;
}

capacity_reply kv_manager::process(const capacity_request& request) {
  capacity_reply reply;
  // Commits first: a sequence that finished in the last step still caches its last blocks.
  for (const auto& c : request.commits)
    commit(c);
  for (uint64_t id : request.free_seqs)
    free_seq(id);
  for (const auto& f : request.forks) {
    const seq_blocks& parent = seqs_.at(f.parent_id);
    if (seqs_.count(f.child_id))
      throw block_pool_error("kv_manager: fork onto existing sequence " + std::to_string(f.child_id));
    seq_blocks child;
    child.table = parent.table;
    child.last_hash = parent.last_hash;
    child.num_committed_blocks = parent.num_committed_blocks;
    for (int32_t b : child.table)
      pool_.retain(b);
    reply.updates.push_back({f.child_id, 0, child.table});
    seqs_.emplace(f.child_id, std::move(child));
  }

  size_t end = request.running.size(); // entries at [end, size) have been preempted
  bool preempted_any = false;
  for (size_t i = 0; i < end; ++i) {
    const kv_need& need = request.running[i];
    auto it = seqs_.find(need.seq_id);
    if (it == seqs_.end())
      throw block_pool_error("kv_manager: running sequence " + std::to_string(need.seq_id) + " has no blocks");
    for (;;) {
      if (blocks_required(it->second, need) <= pool_.num_free_blocks()) {
        grow(need.seq_id, it->second, need, reply);
        break;
      }
      preempted_any = true;
      if (end - 1 > i) {
        preempt(request.running[--end].seq_id, request.preempt_by_swap, false, reply);
        it = seqs_.find(need.seq_id); // preempting may rehash the map
        continue;
      }
      preempt(need.seq_id, request.preempt_by_swap, i == 0, reply);
      end = i; // nothing after it is left either
      break;
    }
  }
  if (!preempted_any) {
    for (const auto& a : request.admit)
      if (!admit(a, request.watermark_blocks, reply))
        break;
  }
  reply.num_blocks = pool_.num_blocks();
  reply.num_free_blocks = pool_.num_free_blocks();
  reply.prefix_cache_queries = prefix_queries_;
  reply.prefix_cache_hits = prefix_hits_;
  return reply;
}

void kv_manager::check_invariants() const {
  pool_.check_invariants();
  std::vector<int32_t> refs(pool_.num_blocks(), 0);
  int32_t host_used = 0;
  for (const auto& [id, s] : seqs_) {
    for (int32_t b : s.table)
      ++refs.at(b);
    host_used += int32_t(s.host_table.size());
  }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b)
    if (refs[b] != pool_.ref_count(b))
      throw block_pool_error("kv_manager: block " + std::to_string(b) + " has count " +
                             std::to_string(pool_.ref_count(b)) + " but " + std::to_string(refs[b]) + " tables");
  if (host_used + pool_.num_free_host_blocks() != pool_.num_host_blocks())
    throw block_pool_error("kv_manager: host blocks leaked");
}

} // namespace actorserve
