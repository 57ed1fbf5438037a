#pragma once
// The model's weights on the device, in the compute dtype, in one allocation. Projections that
// read the same input are fused (q/k/v, gate/up) by placing them next to each other, so one
// GEMM computes them. Loaded from the memory-mapped safetensors through pinned staging
// buffers by several threads, each with its own CUDA stream, so file reads, dtype conversion
// and host-to-device copies overlap.

#include "model/config.hpp"
#include "model/dtype.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace actorserve {
class safetensors_model;
}

namespace actorserve::gpu {

struct device_layer_weights {
  const void* input_norm = nullptr; // [hidden]
  const void* qkv = nullptr;        // [q_size + 2 * kv_size, hidden]: q rows, k rows, v rows
  const void* qkv_bias = nullptr;   // [q_size + 2 * kv_size] or null
  const void* q_norm = nullptr;     // [head_dim] or null (Qwen3)
  const void* k_norm = nullptr;     // [head_dim] or null
  const void* o = nullptr;          // [hidden, q_size]
  const void* post_norm = nullptr;  // [hidden]
  const void* gate_up = nullptr;    // [2 * intermediate, hidden]: gate rows, up rows
  const void* down = nullptr;       // [hidden, intermediate]
  // With fp8 weights (device_model_weights::fp8): qkv, o, gate_up and down hold E4M3 bytes of the
  // same shapes, and these their fp32 scales, one per output row; null otherwise.
  const float* qkv_scale = nullptr;
  const float* o_scale = nullptr;
  const float* gate_up_scale = nullptr;
  const float* down_scale = nullptr;
};

class device_model_weights {
public:
  device_model_weights() = default;
  ~device_model_weights();
  device_model_weights(const device_model_weights&) = delete;
  device_model_weights& operator=(const device_model_weights&) = delete;

  dtype type = dtype::bf16;
  bool fp8 = false; // the decoder's linear weights are E4M3 + row scales (see device_layer_weights)
  const void* embed = nullptr;      // [vocab, hidden]
  const void* final_norm = nullptr; // [hidden]
  const void* lm_head = nullptr;    // [vocab, hidden]; == embed when tied
  std::vector<device_layer_weights> layers;

  size_t device_bytes = 0;  // bytes of the allocation
  size_t file_bytes = 0;    // bytes read from the safetensors
  double load_seconds = 0;  // wall time of the whole load

  void* allocation = nullptr;
};

/// Loads every tensor the config calls for, converted to `compute_type` (f32, f16, bf16). With
/// `fp8`, the decoder's linear weights (q/k/v, o, gate/up, down) are instead quantized on the device
/// to E4M3 with one fp32 scale per output row, from the fp32 value of each checkpoint element, bit
/// for bit as quantize_rows_e4m3 (model/fp8.hpp); they pass through a temporary fp32 copy on the
/// device (4 bytes per element, freed before the function returns).
/// Throws model_error naming the tensor for a missing tensor, a shape that does not match the
/// config, or an unsupported dtype; cuda_error for CUDA failures (out of memory included).
std::unique_ptr<device_model_weights> load_device_weights(const model_config& config, const safetensors_model& model,
                                                          dtype compute_type, int num_threads = 8,
                                                          bool fp8 = false);

} // namespace actorserve::gpu
