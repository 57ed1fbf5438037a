#pragma once
// Backend choice shared by `serve` and `bench throughput`: which device, and the backend
// factory the engine calls on its executor thread.

#include "actors/engine.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace actorserve::gateway {

struct backend_config {
  std::string device = "auto";          // auto, cpu, cuda
  std::string dtype = "auto";
  std::string quantization;             // empty or "none": none
  int tensor_parallel_size = 1;
  double gpu_memory_utilization = 0.90;
  int32_t block_size = 16;
  int64_t kv_cache_tokens = 0;          // CPU: KV capacity in tokens (0: the backend's default)
  double swap_space_gib = 0;            // host blocks for --preemption-mode swap
  int32_t cpu_threads = 0;
};

/// "cpu" or "cuda" for --device auto|cpu|cuda; throws when cuda is asked of a build without it.
std::string resolve_device(const std::string& device);

/// The engine's backend factory for `model_dir` on `device` (resolved).
backend_factory make_backend_factory(const backend_config& cfg, const engine_config& engine,
                                     const std::filesystem::path& model_dir, const std::string& device);

} // namespace actorserve::gateway
