#include "gpu/gemm.hpp"

#include "gpu/cuda_check.hpp"

#include <cuda_runtime.h>

#include <string>

namespace actorserve::gpu {
namespace {

void check_lt(cublasStatus_t status, const char* what, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_cuda_error(what, "cublas status " + std::to_string(int(status)), file, line);
}
#define LT_CHECK(call) check_lt((call), #call, __FILE__, __LINE__)

cudaDataType_t cuda_type(dtype t) {
  switch (t) {
    case dtype::f32:
      return CUDA_R_32F;
    case dtype::f16:
      return CUDA_R_16F;
    case dtype::bf16:
      return CUDA_R_16BF;
    default:
      throw cuda_error("gemm: unsupported dtype " + std::string(dtype_name(t)));
  }
}

} // namespace

struct gemm_runner::plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

gemm_runner::gemm_runner(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  LT_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0)
    ACTORSERVE_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

gemm_runner::~gemm_runner() {
  plans_.clear();
  if (workspace_)
    cudaFree(workspace_);
  if (handle_)
    cublasLtDestroy(handle_);
}

gemm_runner::plan& gemm_runner::get_plan(int64_t m, int64_t n, int64_t k, dtype type, bool has_bias, void* y,
                                         const void* x, const void* w, const void* bias, cudaStream_t stream) {
  const key id{m, n, k, int(type), has_bias};
  auto it = plans_.find(id);
  if (it != plans_.end())
    return *it->second;
  auto p = std::make_unique<plan>();
  const cudaDataType_t t = cuda_type(type);
  // Column-major view: C[n, m] = op(W)[n, k] * X[k, m], W stored as k x n (ld k) and transposed.
  LT_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  if (has_bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof(t)));
  }
  LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, t, uint64_t(k), uint64_t(n), k));
  LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, t, uint64_t(k), uint64_t(m), k));
  LT_CHECK(cublasLtMatrixLayoutCreate(&p->c, t, uint64_t(n), uint64_t(m), n));

  cublasLtMatmulPreference_t pref = nullptr;
  LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                sizeof(workspace_bytes_)));
  const bool tune = tuning_ && m <= max_tuned_m_;
  cublasLtMatmulHeuristicResult_t results[8] = {};
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle_, p->op, p->a, p->b, p->c, p->c, pref, tune ? 8 : 1, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    throw cuda_error("gemm: cuBLASLt has no algorithm for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                     " k=" + std::to_string(k) + " " + std::string(dtype_name(type)));
  p->algo = results[0].algo;
  if (tune && found > 1) {
    // Time each candidate (3 runs after one warm-up) on the real buffers; keep the fastest.
    if (has_bias)
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    cudaEvent_t begin, end;
    ACTORSERVE_CUDA_CHECK(cudaEventCreate(&begin));
    ACTORSERVE_CUDA_CHECK(cudaEventCreate(&end));
    const float alpha = 1.0f, beta = 0.0f;
    float best_ms = 1e30f;
    for (int i = 0; i < found; ++i) {
      if (results[i].state != CUBLAS_STATUS_SUCCESS)
        continue;
      auto launch = [&] {
        return cublasLtMatmul(handle_, p->op, &alpha, w, p->a, x, p->b, &beta, y, p->c, y, p->c, &results[i].algo,
                              workspace_, workspace_bytes_, stream);
      };
      if (launch() != CUBLAS_STATUS_SUCCESS)
        continue;
      ACTORSERVE_CUDA_CHECK(cudaEventRecord(begin, stream));
      for (int r = 0; r < 3; ++r)
        LT_CHECK(launch());
      ACTORSERVE_CUDA_CHECK(cudaEventRecord(end, stream));
      ACTORSERVE_CUDA_CHECK(cudaEventSynchronize(end));
      float ms = 0;
      ACTORSERVE_CUDA_CHECK(cudaEventElapsedTime(&ms, begin, end));
      if (ms < best_ms) {
        best_ms = ms;
        p->algo = results[i].algo;
      }
    }
    cudaEventDestroy(begin);
    cudaEventDestroy(end);
    ++num_tuned_;
  }
  auto& ref = *p;
  plans_.emplace(id, std::move(p));
  return ref;
}

void gemm_runner::run(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                      dtype type, cudaStream_t stream) {
  if (m <= 0)
    return;
  plan& p = get_plan(m, n, k, type, bias != nullptr, y, x, w, bias, stream);
  if (bias)
    LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.0f, beta = 0.0f;
  LT_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                          workspace_bytes_, stream));
}

} // namespace actorserve::gpu
