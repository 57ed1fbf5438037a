#pragma once
// Checks shared by the backends' KV export/import (layout in model/backend.hpp). Each throws
// model_error naming what is wrong; nothing has been copied when it throws.

#include "model/backend.hpp"

namespace actorserve {

/// `num_tokens` positions fit in `block_table`, whose blocks are within [0, num_blocks).
void check_kv_export(const kv_transfer_layout& layout, int32_t block_size, int32_t num_blocks,
                     const std::vector<int32_t>& block_table, int32_t num_tokens);
/// The same, and `data` holds exactly `data_tokens` >= num_tokens tokens of the layout.
void check_kv_import(const kv_transfer_layout& layout, int32_t block_size, int32_t num_blocks,
                     const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                     std::string_view data);

} // namespace actorserve
