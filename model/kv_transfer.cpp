// Default (unsupported) KV export/import of the backend interface, and the size checks every
// implementation shares (model/backend.hpp: kv_transfer_layout).
#include "model/backend.hpp"
#include "model/error.hpp"
#include "model/kv_transfer.hpp"

namespace actorserve {

void backend::export_kv(const std::vector<int32_t>&, int32_t, std::string&) {
  throw model_error("the " + name() + " backend cannot export KV blocks (migrate by recomputation)");
}

void backend::import_kv(const std::vector<int32_t>&, int32_t, int32_t, std::string_view) {
  throw model_error("the " + name() + " backend cannot import KV blocks (migrate by recomputation)");
}

void check_kv_export(const kv_transfer_layout& layout, int32_t block_size, int32_t num_blocks,
                     const std::vector<int32_t>& block_table, int32_t num_tokens) {
  if (num_tokens < 0)
    throw model_error("KV export/import of " + std::to_string(num_tokens) + " tokens");
  if (int64_t(block_table.size()) * block_size < num_tokens)
    throw model_error("KV export/import of " + std::to_string(num_tokens) + " tokens, but the block table of " +
                      std::to_string(block_table.size()) + " blocks holds only " +
                      std::to_string(int64_t(block_table.size()) * block_size));
  for (int32_t i = 0; i < (num_tokens + block_size - 1) / block_size; ++i)
    if (block_table[size_t(i)] < 0 || block_table[size_t(i)] >= num_blocks)
      throw model_error("KV export/import: block " + std::to_string(block_table[size_t(i)]) +
                        " is out of range [0, " + std::to_string(num_blocks) + ")");
  if (layout.token_bytes() <= 0)
    throw model_error("KV export/import: empty layout");
}

void check_kv_import(const kv_transfer_layout& layout, int32_t block_size, int32_t num_blocks,
                     const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                     std::string_view data) {
  check_kv_export(layout, block_size, num_blocks, block_table, num_tokens);
  if (data_tokens < num_tokens)
    throw model_error("KV import of " + std::to_string(num_tokens) + " tokens from a payload of " +
                      std::to_string(data_tokens));
  const int64_t expected = int64_t(data_tokens) * layout.token_bytes();
  if (int64_t(data.size()) != expected)
    throw model_error("KV import: payload of " + std::to_string(data.size()) + " bytes, the layout (" +
                      std::to_string(layout.num_layers) + " layers, " + std::to_string(layout.num_kv_heads) +
                      " KV heads of " + std::to_string(layout.head_dim) + ", " + layout.dtype + ") needs " +
                      std::to_string(expected) + " for " + std::to_string(data_tokens) + " tokens");
}

} // namespace actorserve
