#pragma once

namespace actorserve::gpu {

/// Number of CUDA devices visible; 0 when there is no driver or no GPU.
int device_count();

} // namespace actorserve::gpu
