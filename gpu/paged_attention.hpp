#pragma once
// Paged attention over a mixed batch: prefill chunks (causal within the chunk, attending to
// the sequence's whole cache) and single decode tokens, in one launch. Flash-attention style:
// K/V tiles streamed through shared memory with an online softmax; GQA-aware (one work item
// covers all query heads that share a KV head); split-K over the keys for long decodes.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// A tile of query tokens of one sequence: tokens [q_pos, q_pos + q_len) of the sequence,
/// rows [q_row, q_row + q_len) of q/out. Query token i attends keys [0, q_pos + i].
struct attention_work_item {
  int32_t seq = 0;   // index into context_lens / block_tables
  int32_t q_row = 0;
  int32_t q_len = 0; // 0: padding (graph batches); <= attention_tile_tokens(...)
  int32_t q_pos = 0;
};

/// Small tiles (a few query rows) for decode items, large tiles for prefill chunks.
enum class attention_tile { small, large };

struct paged_attention_args {
  const void* q = nullptr;        // token t, head h at q + t * q_stride + h * head_dim
  int64_t q_stride = 0;
  const void* key_cache = nullptr;   // [num_blocks, block_size, num_kv_heads, head_dim]
  const void* value_cache = nullptr; // same layout
  void* out = nullptr;            // token t, head h at out + t * out_stride + h * head_dim
  int64_t out_stride = 0;
  const int32_t* block_tables = nullptr;       // [num_seqs, *block_table_stride] (device)
  const int32_t* block_table_stride = nullptr; // device scalar: graphs replay with any width
  const attention_work_item* items = nullptr;  // [num_items] (device)
  int32_t num_items = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 0;
  float scale = 0.0f; // softmax scale, usually 1/sqrt(head_dim)
  int32_t num_splits = 1;          // > 1: each item's keys split over this many blocks (at most 64)
  float* split_scratch = nullptr;  // attention_split_scratch_floats(...) floats
};

/// Query tokens one work item may hold for `tile` and the GQA group size; 0 when the tile
/// cannot hold one token's heads (then use the other tile).
int32_t attention_tile_tokens(attention_tile tile, int32_t group_size, int32_t head_dim);
/// Floats of split_scratch needed for `num_items` items with `num_splits` splits.
int64_t attention_split_scratch_floats(attention_tile tile, int32_t group_size, int32_t head_dim, int32_t num_items,
                                       int32_t num_kv_heads, int32_t num_splits);
/// Whether head_dim is compiled in (16, 32, 64, 128, 256).
bool attention_supports_head_dim(int32_t head_dim);

/// Throws std::invalid_argument for unsupported head_dim / group sizes.
void launch_paged_attention(const paged_attention_args& args, attention_tile tile, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
