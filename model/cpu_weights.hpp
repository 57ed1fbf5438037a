#pragma once
// The weights of a model as the CPU backend holds them: fp32, row-major PyTorch Linear layout
// [out_features, in_features], converted once from the memory-mapped safetensors (bf16, f16 or
// f32). Projections that read the same input are fused into one matrix so that one matmul
// (one pass over the activations) computes them: q/k/v, and gate/up.

#include "model/config.hpp"

#include <vector>

namespace actorserve {

class safetensors_model;
class thread_pool;

struct cpu_layer_weights {
  std::vector<float> input_norm; // [hidden]
  std::vector<float> qkv;        // [q_size + 2 * kv_size, hidden]: q rows, then k, then v
  std::vector<float> qkv_bias;   // [q_size + 2 * kv_size], empty without attention_bias
  std::vector<float> q_norm;     // [head_dim], empty without qk_norm
  std::vector<float> k_norm;     // [head_dim], empty without qk_norm
  std::vector<float> o;          // [hidden, q_size]
  std::vector<float> post_norm;  // [hidden]
  std::vector<float> gate_up;    // [2 * intermediate, hidden]: gate rows, then up rows
  std::vector<float> down;       // [hidden, intermediate]
};

struct cpu_model_weights {
  std::vector<float> embed;      // [vocab, hidden]
  std::vector<float> final_norm; // [hidden]
  std::vector<float> lm_head;    // [vocab, hidden]; empty when tied to `embed`
  std::vector<cpu_layer_weights> layers;

  const float* lm_head_data() const { return lm_head.empty() ? embed.data() : lm_head.data(); }
  /// Number of parameters held (a tied lm_head counted once).
  int64_t num_params() const;
};

/// Reads and converts every tensor the config calls for. Throws model_error naming the tensor
/// for a missing tensor, a shape that does not match the config, or an unsupported dtype.
cpu_model_weights load_cpu_weights(const model_config& config, const safetensors_model& model, thread_pool& pool);

} // namespace actorserve
