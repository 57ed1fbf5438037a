#include "gateway/backend_setup.hpp"

#include "model/config.hpp"
#include "model/cpu_backend.hpp"
#ifdef ACTORSERVE_HAS_CUDA
#include "gpu/cuda_backend.hpp"
#include "gpu/device_info.hpp"
#endif

#include <stdexcept>

namespace actorserve::gateway {

namespace fs = std::filesystem;

namespace {

bool cuda_available() {
#ifdef ACTORSERVE_HAS_CUDA
  return true;
#else
  return false;
#endif
}

// A CUDA build on a machine without a GPU (or without a driver, as on CI) serves on the CPU.
bool cuda_device_present() {
#ifdef ACTORSERVE_HAS_CUDA
  return gpu::device_count() > 0;
#else
  return false;
#endif
}

} // namespace

std::string resolve_device(const std::string& device) {
  if (device == "cpu" || device == "cuda") {
    if (device == "cuda" && !cuda_available())
      throw std::runtime_error("--device cuda: this build has no CUDA backend (built without nvcc)");
    return device;
  }
  if (device != "auto")
    throw std::runtime_error("--device must be auto, cpu or cuda, not '" + device + "'");
  return cuda_device_present() ? "cuda" : "cpu";
}

namespace {

// KV bytes of one block on the CPU backend (fp32 K and V, every layer).
int64_t cpu_block_bytes(const model_config& c, int32_t block_size) {
  return int64_t(2) * 4 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * block_size;
}

} // namespace

backend_factory make_backend_factory(const backend_config& cfg, const engine_config& engine, const fs::path& model_dir,
                                     const std::string& device) {
  if (cfg.tensor_parallel_size != 1)
    throw std::runtime_error("--tensor-parallel-size " + std::to_string(cfg.tensor_parallel_size) +
                             ": only 1 is supported by this build's serve command");
  if (device == "cpu") {
    const model_config mc = load_model_config(model_dir);
    cpu_backend_options o;
    o.block_size = cfg.block_size;
    o.max_kv_tokens = cfg.kv_cache_tokens;
    o.num_threads = cfg.cpu_threads;
    o.num_host_blocks = int32_t(cfg.swap_space_gib * double(1ull << 30) / double(cpu_block_bytes(mc, cfg.block_size)));
    o.quantization = cfg.quantization; // fp8: the reference numbers of the CUDA fp8 path, in fp32
    return [model_dir, o] { return make_cpu_backend(model_dir, o); };
  }
#ifdef ACTORSERVE_HAS_CUDA
  cuda_backend_options o;
  o.dtype = cfg.dtype;
  o.gpu_memory_utilization = cfg.gpu_memory_utilization;
  o.block_size = cfg.block_size;
  o.max_num_seqs = engine.max_num_seqs;
  o.max_num_batched_tokens = engine.max_num_batched_tokens;
  o.max_model_len = engine.max_model_len;
  o.quantization = cfg.quantization;
  return [model_dir, o] { return make_cuda_backend(model_dir, o); };
#else
  throw std::runtime_error("no CUDA backend in this build");
#endif
}

} // namespace actorserve::gateway
