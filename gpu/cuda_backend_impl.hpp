#pragma once
// Internals of the CUDA backend shared by its .cpp files (construction and graphs in
// cuda_backend.cpp, the forward pass in cuda_forward.cpp, step preparation and sampling in
// cuda_step.cpp). Not part of the public interface.

#include "gpu/cuda_backend.hpp"
#include "gpu/cuda_check.hpp"
#include "gpu/device_weights.hpp"
#include "gpu/gemm.hpp"
#include "gpu/paged_attention.hpp"
#include "gpu/sampler.hpp"
#include "model/config.hpp"

#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace actorserve::gpu {

/// A device array with a pinned host mirror of the same capacity: the host side is filled,
/// then copied with one cudaMemcpyAsync. Device pointers stay fixed for CUDA graphs.
template <typename T>
class mirrored {
public:
  mirrored() = default;
  ~mirrored() { release(); }
  mirrored(const mirrored&) = delete;
  mirrored& operator=(const mirrored&) = delete;

  void allocate(size_t capacity) {
    release();
    capacity_ = capacity < 1 ? 1 : capacity;
    ACTORSERVE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&device_), capacity_ * sizeof(T)));
    ACTORSERVE_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_), capacity_ * sizeof(T)));
  }
  /// Grows (contents lost) when `n` exceeds the capacity; only outside graph capture.
  void reserve(size_t n) {
    if (n > capacity_)
      allocate(n * 2);
  }
  void upload(size_t count, cudaStream_t stream) {
    if (count > 0)
      ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(device_, host_, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  void download(size_t count, cudaStream_t stream) {
    if (count > 0)
      ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(host_, device_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  }
  T* host() { return host_; }
  T* device() { return device_; }
  size_t capacity() const { return capacity_; }

private:
  void release() {
    if (device_)
      cudaFree(device_);
    if (host_)
      cudaFreeHost(host_);
    device_ = nullptr;
    host_ = nullptr;
    capacity_ = 0;
  }
  T* device_ = nullptr;
  T* host_ = nullptr;
  size_t capacity_ = 0;
};

/// What one forward pass runs over (the inputs are already in the device buffers).
struct forward_plan {
  int32_t num_tokens = 0;      // activation rows, padded to the graph batch for graphs
  int32_t num_small_items = 0; // attention work items using the small tile, first in `items`
  int32_t num_large_items = 0; // then these, with the large tile
  int32_t num_splits = 1;      // key splits of the small-tile items
  int32_t num_logit_rows = 0;  // rows the LM head computes
  bool gather_logit_rows = true; // false: the LM head reads rows [0, num_logit_rows) of x
};

/// CUDA events between kernel groups of eager steps, summed per group name.
class step_profiler {
public:
  ~step_profiler();
  void start(cudaStream_t stream);
  void mark(const char* group, cudaStream_t stream);
  /// After the stream is synchronized: adds the intervals to the totals.
  void collect();
  bool enabled = false;
  std::map<std::string, double> total_ms;
  int64_t steps = 0;

private:
  cudaEvent_t next_event();
  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
  std::vector<std::pair<std::string, size_t>> marks_; // group, event index
};

struct cuda_backend::impl {
  impl(const std::filesystem::path& model_dir, const cuda_backend_options& options);
  ~impl();

  // cuda_forward.cpp
  void run_forward(const forward_plan& plan);
  void* k_cache(int64_t layer) const;
  void* v_cache(int64_t layer) const;
  /// y = x w^T (+ bias) through the small-batch kernel or cuBLASLt, whichever was faster for
  /// this shape when timed in a warm-up run (cuBLASLt for shapes never timed).
  void linear(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k);
  /// Whether linear() takes the small-batch kernel for this shape (times it once while the GEMM
  /// runner is tuning, i.e. in the warm-up runs before graph capture).
  bool small_gemm_chosen(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k);
  /// A linear layer whose weight is E4M3 with row scales when `scales` is not null (fp8): the
  /// small fp8 GEMM for up to 16 rows in bf16/fp16, else dequantized into fp8_scratch for cuBLASLt.
  void linear_q(void* y, const void* x, const void* w, const float* scales, const void* bias, int64_t m, int64_t n,
                int64_t k);
  bool small_gemm_wins(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k);

  // cuda_step.cpp
  void execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
               std::vector<sampled_token>& out, std::vector<float>* logits);
  int32_t splits_for(int32_t num_items, int32_t max_context) const;

  // cuda_backend.cpp
  void allocate_buffers();
  void allocate_kv_cache();
  void capture_graphs();
  void copy_blocks(const std::vector<block_copy>& copies, cudaMemcpyKind kind);

  cuda_backend_options options;
  model_config config;
  dtype type = dtype::bf16;
  cudaStream_t stream = nullptr;
  int sm_count = 0;
  std::unique_ptr<device_model_weights> weights;
  std::unique_ptr<gemm_runner> gemm;
  float* inv_freq = nullptr; // [head_dim / 2]

  // Limits.
  int32_t max_tokens = 0;         // per step
  int32_t max_seqs = 0;           // per step
  int32_t max_model_len = 0;
  int32_t max_blocks_per_seq = 0;
  int32_t max_items = 0;
  int32_t small_tile_tokens = 0;  // 0: GQA group too large for the small tile
  int32_t large_tile_tokens = 0;

  // Activations [rows, columns] in the compute dtype.
  void* residual = nullptr; // [max_tokens, hidden]
  void* x = nullptr;        // [max_tokens, hidden]: normed input, then sublayer output
  void* qkv = nullptr;      // [max_tokens, q + 2 kv]
  void* attn = nullptr;     // [max_tokens, q]
  void* gate_up = nullptr;  // [max_tokens, 2 intermediate]
  void* act = nullptr;      // [max_tokens, intermediate]
  void* logits_in = nullptr; // [max_seqs, hidden]
  void* logits = nullptr;    // [max_seqs, vocab]
  float* sampler_work = nullptr; // [max_seqs, vocab]
  void* fp8_scratch = nullptr;    // fp8 only: the largest linear weight in the compute dtype
  float* split_scratch = nullptr;
  int64_t split_scratch_floats = 0;
  std::vector<void*> allocations;

  // KV cache: per layer K then V, each [num_blocks, block_size, num_kv_heads, head_dim].
  void* kv = nullptr;
  size_t kv_layer_bytes = 0; // one of K or V of one layer
  size_t kv_block_bytes = 0; // one block of one of K or V of one layer
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  void* host_kv = nullptr;   // pinned [layers][2][num_host_blocks][block]
  int32_t num_host_blocks = 0;

  // Step inputs and outputs.
  mirrored<int32_t> token_ids, positions, slots, block_tables, block_table_stride, logit_rows;
  mirrored<attention_work_item> items;
  mirrored<sampler_row> sampler_rows;
  mirrored<int32_t> penalty_ids, penalty_counts;
  mirrored<int32_t> out_tokens, logprob_rows, top_ids;
  mirrored<float> out_logprobs, out_lse, top_logprobs;
  std::vector<char> logits_host;

  // (m, n, k) -> whether the small-batch GEMM beat cuBLASLt when timed.
  std::map<std::tuple<int64_t, int64_t, int64_t>, bool> small_gemm_choice;

  // Decode graphs by padded batch size.
  std::map<int32_t, cudaGraphExec_t> graphs;
  bool graphs_enabled = true;

  step_profiler profiler;
  cuda_startup_stats stats;
};

} // namespace actorserve::gpu
