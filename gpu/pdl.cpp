#include "gpu/pdl.hpp"

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace actorserve::gpu {
namespace {

std::atomic<int> pdl_state{-1}; // -1 undecided, 0 off, 1 on

int decide() {
  const char* env = std::getenv("ACTORSERVE_PDL");
  if (env && std::strcmp(env, "0") == 0)
    return 0;
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError(); // no device: leave no sticky error behind
    return 0;
  }
  return major >= 9 ? 1 : 0;
}

} // namespace

bool pdl_enabled() {
  int state = pdl_state.load(std::memory_order_relaxed);
  if (state < 0) {
    state = decide();
    pdl_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

void set_pdl_enabled(bool on) { pdl_state.store(on ? 1 : 0, std::memory_order_relaxed); }

} // namespace actorserve::gpu
