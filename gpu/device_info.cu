// Device queries used in logs and start-up checks.
#include "gpu/device_info.hpp"

#include <cuda_runtime.h>

namespace actorserve::gpu {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess)
    return 0;
  return n;
}

} // namespace actorserve::gpu
