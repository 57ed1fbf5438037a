#pragma once
// Rotary position embedding as Hugging Face computes it for Llama-family models: the
// "neox" layout (rotate_half: dimension i pairs with i + head_dim/2), inverse frequencies in
// fp32 from rope_theta, rescaled for rope_scaling "linear" and "llama3".

#include "model/config.hpp"

#include <cstdint>
#include <vector>

namespace actorserve {

/// inv_freq[i] = 1 / theta^(2i / head_dim) for i < head_dim / 2, with rope_scaling applied,
/// in the same fp32 steps as transformers' rope initialization functions.
std::vector<float> rope_inv_freq(const model_config& config);

/// Rotates `num_heads` vectors of `head_dim` floats (consecutive) for position `pos`.
void apply_rope(float* heads, int64_t num_heads, int64_t head_dim, int32_t pos, const float* inv_freq);

} // namespace actorserve
