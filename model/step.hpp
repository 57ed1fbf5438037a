#pragma once
// The step contract: what the scheduler asks a backend (CPU or CUDA) to compute in one
// iteration. Defined once; both backends implement exactly this.
//
// A step is a flat batch of tokens from several sequences. Each sequence contributes
// `num_new_tokens` consecutive tokens starting at position `num_computed_tokens`: a prefill
// chunk (many tokens), a whole prompt, or a single decode token. Its KV entries for positions
// [0, num_computed_tokens + num_new_tokens) live in the physical blocks of `block_table`
// (position p is slot p % block_size of block block_table[p / block_size]). The backend writes
// the new tokens' K/V into those slots, attends causally over the sequence's cache, and, for
// sequences with `needs_logits`, produces logits of the last new token and samples from them.

#include <cstdint>
#include <string>
#include <vector>

namespace actorserve {

struct step_sequence {
  uint64_t seq_id = 0;
  int32_t num_computed_tokens = 0; // tokens already in the KV cache before this step
  int32_t num_new_tokens = 0;      // tokens of this sequence in this step (query length, >= 1)
  bool needs_logits = false;       // sample a token after the last new token
  std::vector<int32_t> block_table; // physical block ids; covers num_computed + num_new tokens

  int32_t context_len() const { return num_computed_tokens + num_new_tokens; }
};

struct step_batch {
  std::vector<int32_t> token_ids;   // [num_tokens], sequences concatenated in `seqs` order
  std::vector<int32_t> positions;   // [num_tokens], num_computed_tokens + i within each sequence
  std::vector<step_sequence> seqs;  // in token order

  int32_t num_tokens() const { return int32_t(token_ids.size()); }
  int32_t num_logits() const;       // sequences with needs_logits
  /// Appends one sequence's tokens and fills their positions.
  void add(const step_sequence& seq, const int32_t* tokens);
  /// Empty string when consistent with `block_size` and `num_blocks`; otherwise what is wrong.
  std::string validate(int32_t block_size, int32_t num_blocks) const;
};

/// Blocks to copy before a step runs (copy-on-write of shared blocks, swap in/out). Block ids
/// are device block ids, or host block ids for the host side of a swap.
struct block_copy {
  int32_t src = 0;
  int32_t dst = 0;
};

} // namespace actorserve
