#pragma once
// The CUDA backend: implements the step contract (model/step.hpp, model/backend.hpp) on one
// GPU. Weights and the paged KV cache live on the device in the compute dtype; decode-only
// steps replay CUDA graphs captured at start for bucketed batch sizes; mixed steps run
// eagerly; sampling runs on the GPU with the CPU sampler's rules.
//
// The actor engine creates it through make_cuda_backend() when ACTORSERVE_HAS_CUDA is defined.

#include "model/backend.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace actorserve {

struct cuda_backend_options {
  int device = 0;
  /// "auto" (config.json's torch_dtype), "bfloat16", "float16" or "float32".
  std::string dtype = "auto";
  /// Fraction of the GPU's memory this process may hold (weights + activations + KV cache).
  double gpu_memory_utilization = 0.90;
  int32_t block_size = 16;
  int32_t num_blocks = 0;        // 0: as many as fit under gpu_memory_utilization
  int32_t num_host_blocks = 0;   // pinned host blocks for swapping
  int32_t max_num_seqs = 256;    // sequences per step (also the largest graph batch)
  int32_t max_num_batched_tokens = 8192; // tokens per step
  int32_t max_model_len = 0;     // 0: max_position_embeddings
  bool cuda_graphs = true;
  int load_threads = 8;          // weight-loading threads (each with a stream and staging buffers)
  /// "none" (or empty), or "fp8": weight-only E4M3 for the decoder's linear layers, one fp32
  /// scale per output row, quantized at load from the checkpoint (model/fp8.hpp is the reference).
  std::string quantization = "none";
};

/// Start-up figures, for logs and benchmarks.
struct cuda_startup_stats {
  double weights_seconds = 0;       // read + convert + copy of the weights
  double graph_capture_seconds = 0; // warm-up and capture of all decode graphs
  double total_seconds = 0;         // constructor, end to end
  size_t weight_bytes = 0;
  size_t kv_cache_bytes = 0;
  int32_t num_graphs = 0;
  std::string compute_dtype;
  std::string quantization = "none"; // or "fp8"
};

namespace gpu {

class cuda_backend final : public backend {
public:
  cuda_backend(const std::filesystem::path& model_dir, const cuda_backend_options& options);
  ~cuda_backend() override;

  const model_config& config() const override;
  kv_cache_shape kv_shape() const override;
  std::string name() const override;
  void execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
               std::vector<sampled_token>& out, std::vector<float>* logits = nullptr) override;
  void copy_blocks(const std::vector<block_copy>& copies) override;
  void swap_out(const std::vector<block_copy>& copies) override;
  void swap_in(const std::vector<block_copy>& copies) override;
  // gpu/cuda_kv_transfer.cpp: migration by KV shipping (device <-> host copies).
  std::optional<kv_transfer_layout> kv_transfer() const override;
  void export_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, std::string& out) override;
  void import_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                 std::string_view data) override;

  const cuda_startup_stats& startup() const;
  /// Profiling: steps run eagerly with CUDA events between the kernel groups; profile() gives
  /// the accumulated milliseconds per group (gemm, attention, norm, ...) and the step count.
  void set_profiling(bool on);
  std::vector<std::pair<std::string, double>> profile() const;
  void reset_profile();
  /// Graphs on or off at run time (off: every step eager), for comparisons.
  void set_graphs_enabled(bool on);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace gpu

/// Creates the CUDA backend on options.device. Throws model_error for bad model files or
/// options, gpu::cuda_error for CUDA failures (no device, out of memory).
std::unique_ptr<backend> make_cuda_backend(const std::filesystem::path& model_dir,
                                           const cuda_backend_options& options = {});

} // namespace actorserve
