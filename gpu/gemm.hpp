#pragma once
// Linear layers through cuBLASLt: y[m, n] = x[m, k] * w[n, k]^T (+ bias[n]), all row-major
// in one dtype (bf16, fp16 or fp32), fp32 accumulation. The algorithm for each shape is
// picked once (cuBLASLt's heuristic) and cached with its descriptors, so steady-state steps and
// CUDA graph capture do no planning.

#include "model/dtype.hpp"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace actorserve::gpu {

class gemm_runner {
public:
  explicit gemm_runner(size_t workspace_bytes = size_t(32) << 20);
  ~gemm_runner();
  gemm_runner(const gemm_runner&) = delete;
  gemm_runner& operator=(const gemm_runner&) = delete;

  /// y = x * w^T (+ bias). w is the Hugging Face [out_features, in_features] weight.
  void run(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k, dtype type,
           cudaStream_t stream);

  /// Shapes planned so far (for logs).
  size_t num_plans() const { return plans_.size(); }

  /// While on, a newly planned shape with m <= max_tuned_m times up to 8 of the heuristic's
  /// candidates on the call's own buffers and keeps the fastest (it synchronizes the stream,
  /// so only outside graph capture: the backend turns it on for its warm-up runs).
  void set_tuning(bool on, int64_t max_tuned_m = 32) {
    tuning_ = on;
    max_tuned_m_ = max_tuned_m;
  }
  /// Whether set_tuning is on (the backend's warm-up runs, outside graph capture).
  bool tuning() const { return tuning_; }
  /// Shapes whose algorithm was chosen by timing.
  size_t num_tuned() const { return num_tuned_; }

private:
  struct plan;
  using key = std::tuple<int64_t, int64_t, int64_t, int, bool>;
  plan& get_plan(int64_t m, int64_t n, int64_t k, dtype type, bool has_bias, void* y, const void* x, const void* w,
                 const void* bias, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<key, std::unique_ptr<plan>> plans_;
  bool tuning_ = false;
  int64_t max_tuned_m_ = 32;
  size_t num_tuned_ = 0;
};

} // namespace actorserve::gpu
