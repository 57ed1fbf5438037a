#pragma once
// The CPU reference backend: the forward pass in fp32 over a paged KV cache, for Llama, Qwen2,
// Qwen3 and Mistral. It is the oracle for the CUDA backend and the backend CI serves with.

#include "model/backend.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace actorserve {

struct cpu_backend_options {
  int32_t block_size = 16;
  int32_t num_blocks = 0;      // 0: enough for max_kv_tokens
  int64_t max_kv_tokens = 0;   // 0: 4 sequences of max_position_embeddings (capped at 65536)
  int32_t num_host_blocks = 0; // host swap blocks
  int32_t num_threads = 0;     // 0: hardware concurrency
  /// "none" (or empty), or "fp8": the decoder's linear layers (q/k/v, o, gate/up, down) are
  /// rounded to E4M3 with one scale per output row (model/fp8.hpp), exactly the numbers the CUDA
  /// backend's `--quantization fp8` multiplies with; still held in fp32 here (a reference, not
  /// a memory saving). The embedding and lm_head stay unquantized, as with vLLM's fp8.
  std::string quantization = "none";
};

std::unique_ptr<backend> make_cpu_backend(const std::filesystem::path& model_dir,
                                          const cpu_backend_options& options = {});

} // namespace actorserve
