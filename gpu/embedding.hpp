#pragma once
// Row gather: out[i, :] = table[ids[i], :]. The token embedding lookup, and the gather of the
// rows that need logits before the LM head.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// out [num_rows, row_size], table [table_rows, row_size], ids [num_rows] (device), all of
/// dtype `type`. Ids outside [0, table_rows) give a zero row (the host validates token ids;
/// this only keeps a bad id from reading out of bounds).
void launch_embedding(void* out, const void* table, const int32_t* ids, int64_t num_rows, int64_t row_size,
                      int64_t table_rows, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
