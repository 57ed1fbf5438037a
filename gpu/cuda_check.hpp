#pragma once
// Checked CUDA, cuBLAS and NCCL calls: a failure throws gpu::cuda_error naming the call, the
// file and the line (llm.c's cudaCheck habit), so that no error code is silently dropped.
// Usable from .cu and .cpp files (no spdlog, no fmt).

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace actorserve::gpu {

class cuda_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda_error(const char* what, const std::string& detail, const char* file, int line) {
  throw cuda_error(std::string(what) + " failed: " + detail + " at " + file + ":" + std::to_string(line));
}

inline void check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw_cuda_error(what, cudaGetErrorString(err), file, line);
}

} // namespace actorserve::gpu

#define ACTORSERVE_CUDA_CHECK(call) ::actorserve::gpu::check_cuda((call), #call, __FILE__, __LINE__)
/// After a kernel launch: catches bad launch configurations at once (cheap, no sync).
#define ACTORSERVE_CUDA_CHECK_LAUNCH(name) ::actorserve::gpu::check_cuda(cudaGetLastError(), name, __FILE__, __LINE__)
