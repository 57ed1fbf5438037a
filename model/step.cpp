#include "model/step.hpp"

#include <algorithm>

namespace actorserve {

int32_t step_batch::num_logits() const {
  int32_t n = 0;
  for (const auto& s : seqs)
    n += s.needs_logits ? 1 : 0;
  return n;
}

void step_batch::add(const step_sequence& seq, const int32_t* tokens) {
  for (int32_t i = 0; i < seq.num_new_tokens; ++i) {
    token_ids.push_back(tokens[i]);
    positions.push_back(seq.num_computed_tokens + i);
  }
  seqs.push_back(seq);
}

std::string step_batch::validate(int32_t block_size, int32_t num_blocks) const {
  if (block_size <= 0)
    return "block_size must be positive, got " + std::to_string(block_size);
  if (token_ids.size() != positions.size())
    return "step has " + std::to_string(token_ids.size()) + " token ids but " + std::to_string(positions.size()) +
           " positions";
  if (seqs.empty())
    return "step has no sequences";
  // (physical block * block_size + slot) of every new token: two sequences writing the same
  // KV slot in one step would corrupt each other.
  std::vector<int64_t> written_slots;
  written_slots.reserve(token_ids.size());
  std::vector<uint64_t> ids;
  ids.reserve(seqs.size());
  int64_t offset = 0;
  for (const auto& s : seqs) {
    const std::string who = "sequence " + std::to_string(s.seq_id);
    ids.push_back(s.seq_id);
    if (s.num_new_tokens < 1)
      return who + ": num_new_tokens must be >= 1, got " + std::to_string(s.num_new_tokens);
    if (s.num_computed_tokens < 0)
      return who + ": num_computed_tokens must be >= 0, got " + std::to_string(s.num_computed_tokens);
    if (offset + s.num_new_tokens > int64_t(token_ids.size()))
      return who + ": its " + std::to_string(s.num_new_tokens) + " new tokens run past the step's " +
             std::to_string(token_ids.size()) + " tokens";
    const int64_t context_len = int64_t(s.num_computed_tokens) + s.num_new_tokens;
    const int64_t blocks_needed = (context_len + block_size - 1) / block_size;
    if (int64_t(s.block_table.size()) < blocks_needed)
      return who + ": block table has " + std::to_string(s.block_table.size()) + " blocks, " +
             std::to_string(blocks_needed) + " needed for " + std::to_string(context_len) + " tokens";
    for (size_t b = 0; b < s.block_table.size(); ++b) {
      int32_t id = s.block_table[b];
      if (id < 0 || id >= num_blocks)
        return who + ": block_table[" + std::to_string(b) + "] = " + std::to_string(id) + " is outside [0, " +
               std::to_string(num_blocks) + ")";
    }
    for (int32_t i = 0; i < s.num_new_tokens; ++i) {
      const int64_t expected = int64_t(s.num_computed_tokens) + i;
      const int32_t pos = positions[size_t(offset + i)];
      if (pos != expected)
        return who + ": token " + std::to_string(i) + " has position " + std::to_string(pos) + ", expected " +
               std::to_string(expected);
      const int32_t block = s.block_table[size_t(expected / block_size)];
      written_slots.push_back(int64_t(block) * block_size + expected % block_size);
    }
    offset += s.num_new_tokens;
  }
  if (offset != int64_t(token_ids.size()))
    return "sequences cover " + std::to_string(offset) + " tokens but the step has " +
           std::to_string(token_ids.size());
  std::sort(ids.begin(), ids.end());
  if (auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end())
    return "sequence " + std::to_string(*dup) + " appears twice in the step";
  std::sort(written_slots.begin(), written_slots.end());
  if (auto dup = std::adjacent_find(written_slots.begin(), written_slots.end()); dup != written_slots.end())
    return "two new tokens write the same KV slot (block " + std::to_string(*dup / block_size) + ", slot " +
           std::to_string(*dup % block_size) + ")";
  return {};
}

} // namespace actorserve
