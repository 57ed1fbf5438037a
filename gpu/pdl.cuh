#pragma once
// The kernel side of programmatic dependent launch (see pdl.hpp), and the launch helper.
//
// Rule for every kernel launched through launch_pdl: each block calls pdl_wait() before it reads or
// writes anything an earlier kernel of the stream writes or reads (activations, the KV cache, step
// inputs); only data that no kernel writes (weights) may be read before it. Every block waits,
// early-exiting ones too, so a grid never completes before the grid it depends on: the chain stays
// transitive for the kernels after it. pdl_launch_dependents() lets the next kernel's blocks start
// (they wait in their own pdl_wait). Both are no-ops when the kernel was launched without PDL. Only
// included from .cu files.

#include "gpu/cuda_check.hpp"
#include "gpu/pdl.hpp"

#include <cuda_runtime.h>

namespace actorserve::gpu {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/// Launches kernel<<<grid, block, smem, stream>>>(args...), with PDL when pdl_enabled() and the
/// stream is not the legacy default stream (whose implicit synchronization PDL does not take part
/// in).
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = (pdl_enabled() && stream != nullptr) ? 1 : 0;
  ACTORSERVE_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

} // namespace actorserve::gpu
