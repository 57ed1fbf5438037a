#pragma once
// The gated MLP activation of Llama-family models.

#include "model/dtype.hpp"

#include <cuda_runtime_api.h>
#include <cstdint>

namespace actorserve::gpu {

/// in [rows, 2 * width] = [gate | up] (the fused gate_up projection), out [rows, width]:
/// out = to_type(silu(gate)) * up, rounded like torch's act_fn(gate) * up in bf16.
void launch_silu_and_mul(void* out, const void* in, int64_t rows, int64_t width, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu
