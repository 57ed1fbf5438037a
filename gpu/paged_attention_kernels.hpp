#pragma once
// Internal: the tensor-core paged-attention kernels that launch_paged_attention dispatches to
// (paged_attention.cu keeps the generic fp32-capable kernels, the split combine and the
// dispatch). Not part of the public interface.

#include "gpu/paged_attention.hpp"

namespace actorserve::gpu::detail {

/// Decode tiles on tensor cores: bf16/fp16, head_dim 32/64/128, at most 8 query rows per item
/// (tokens x GQA group), q/out rows 16-byte aligned. Writes the output (one split) or the
/// split partials in the layout combine_splits_kernel reads ([rows][D] sums, max, sum).
bool decode_mma_supported(const paged_attention_args& a, int rows, dtype type);
void launch_decode_mma(const paged_attention_args& a, int rows, dtype type, cudaStream_t stream);

/// Prefill tiles (64 query rows, no key splits) on tensor cores: bf16/fp16, head_dim 32/64/128.
bool prefill_mma_supported(const paged_attention_args& a, int rows, dtype type);
void launch_prefill_mma(const paged_attention_args& a, dtype type, cudaStream_t stream);

} // namespace actorserve::gpu::detail
