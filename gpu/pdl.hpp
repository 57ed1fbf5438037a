#pragma once
// Programmatic dependent launch (PDL, compute capability 9.0): a kernel launched with it may start
// while the kernel before it in the stream is still running, and waits on griddepcontrol.wait
// before it touches that kernel's output. Decode steps at batch 1 are ~300 short launches, so this
// hides the launch gaps, and the small GEMM loads its first weights before the wait (gpu/pdl.cuh
// has the kernel side). Works in CUDA graph capture.

namespace actorserve::gpu {

/// Whether launches through launch_pdl ask for PDL: on a device of compute capability >= 9.0,
/// unless the environment sets ACTORSERVE_PDL=0. Decided once per process (the current device at
/// the first call), or by set_pdl_enabled.
bool pdl_enabled();

/// Overrides the decision (tests compare both). A CUDA graph keeps what was set when it was
/// captured.
void set_pdl_enabled(bool on);

} // namespace actorserve::gpu
