// Construction of the CUDA backend (weights, buffers, KV cache sized from free memory, decode
// graphs), block copies and swaps, and the public wrapper.
#include "gpu/cuda_backend_impl.hpp"
#include "model/cpu_rope.hpp"
#include "model/error.hpp"
#include "model/safetensors.hpp"

#include <cuda_runtime.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace actorserve::gpu {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

dtype pick_dtype(const std::string& wanted, const model_config& c) {
  const std::string name = wanted == "auto" ? (c.torch_dtype.empty() ? "bfloat16" : c.torch_dtype) : wanted;
  if (name == "bfloat16" || name == "bf16")
    return dtype::bf16;
  if (name == "float16" || name == "fp16" || name == "half")
    return dtype::f16;
  if (name == "float32" || name == "fp32" || name == "float")
    return dtype::f32;
  throw model_error("CUDA backend: dtype '" + name + "' is not one of bfloat16, float16, float32");
}

std::vector<int32_t> graph_batch_sizes(int32_t max_batch) {
  std::vector<int32_t> sizes;
  for (int32_t b : {1, 2, 4})
    if (b <= max_batch)
      sizes.push_back(b);
  for (int32_t b = 8; b <= max_batch; b += 8)
    sizes.push_back(b);
  if (sizes.empty() || sizes.back() != max_batch)
    sizes.push_back(max_batch);
  return sizes;
}

} // namespace

cuda_backend::impl::impl(const std::filesystem::path& model_dir, const cuda_backend_options& o)
    : options(o), config(load_model_config(model_dir)) {
  const auto start = clock_type::now();
  if (o.block_size <= 0 || o.max_num_seqs <= 0 || o.max_num_batched_tokens <= 0)
    throw model_error("CUDA backend: block_size, max_num_seqs and max_num_batched_tokens must be positive");
  if (!(o.gpu_memory_utilization > 0.0 && o.gpu_memory_utilization <= 1.0))
    throw model_error("CUDA backend: gpu_memory_utilization must be in (0, 1]");
  if (!attention_supports_head_dim(int32_t(config.head_dim)))
    throw model_error("CUDA backend: head_dim " + std::to_string(config.head_dim) +
                      " is not supported (16, 32, 64, 128, 256)");
  type = pick_dtype(o.dtype, config);
  if (!o.quantization.empty() && o.quantization != "none" && o.quantization != "fp8")
    throw model_error("CUDA backend: quantization '" + o.quantization + "' is not supported (none, fp8)");
  const bool fp8 = o.quantization == "fp8";
  int num_devices = 0;
  ACTORSERVE_CUDA_CHECK(cudaGetDeviceCount(&num_devices));
  if (o.device < 0 || o.device >= num_devices)
    throw model_error("CUDA backend: device " + std::to_string(o.device) + " does not exist (" +
                      std::to_string(num_devices) + " visible)");
  ACTORSERVE_CUDA_CHECK(cudaSetDevice(o.device));
  ACTORSERVE_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, o.device));
  ACTORSERVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  block_size = o.block_size;
  max_seqs = o.max_num_seqs;
  max_tokens = std::max(o.max_num_batched_tokens, o.max_num_seqs);
  max_model_len = o.max_model_len > 0 ? o.max_model_len : int32_t(std::max<int64_t>(config.max_position_embeddings, 1));
  max_blocks_per_seq = (max_model_len + block_size - 1) / block_size;
  const int32_t group = int32_t(config.num_attention_heads / config.num_key_value_heads);
  small_tile_tokens = attention_tile_tokens(attention_tile::small, group, int32_t(config.head_dim));
  large_tile_tokens = attention_tile_tokens(attention_tile::large, group, int32_t(config.head_dim));
  if (large_tile_tokens == 0)
    throw model_error("CUDA backend: a GQA group of " + std::to_string(group) + " query heads is not supported");
  max_items = max_tokens + max_seqs;

  const auto load_start = clock_type::now();
  {
    safetensors_model files(model_dir);
    weights = load_device_weights(config, files, type, o.load_threads, fp8);
  }
  stats.quantization = fp8 ? "fp8" : "none";
  stats.weights_seconds = seconds_since(load_start);
  stats.weight_bytes = weights->device_bytes;
  stats.compute_dtype = std::string(dtype_name(type));
  spdlog::info("cuda: {} bytes of weights ({}{}) loaded in {:.2f} s ({:.1f} GB/s)", weights->device_bytes,
               stats.compute_dtype, fp8 ? ", linear layers fp8 e4m3" : "", stats.weights_seconds, double(weights->file_bytes) / 1e9 / stats.weights_seconds);

  gemm = std::make_unique<gemm_runner>();
  const std::vector<float> freqs = rope_inv_freq(config);
  ACTORSERVE_CUDA_CHECK(cudaMalloc(&inv_freq, freqs.size() * sizeof(float)));
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(inv_freq, freqs.data(), freqs.size() * sizeof(float), cudaMemcpyHostToDevice));
  allocate_buffers();
  allocate_kv_cache();
  graphs_enabled = o.cuda_graphs;
  if (o.cuda_graphs)
    capture_graphs();
  stats.total_seconds = seconds_since(start);
  spdlog::info("cuda: ready in {:.2f} s ({} KV blocks of {} tokens, {} graphs captured in {:.2f} s, {} GEMM shapes "
               "tuned)",
               stats.total_seconds, num_blocks, block_size, stats.num_graphs, stats.graph_capture_seconds,
               gemm->num_tuned());
}

cuda_backend::impl::~impl() {
  if (stream)
    cudaStreamSynchronize(stream);
  for (auto& [b, g] : graphs)
    cudaGraphExecDestroy(g);
  for (void* p : allocations)
    cudaFree(p);
  if (kv)
    cudaFree(kv);
  if (host_kv)
    cudaFreeHost(host_kv);
  if (inv_freq)
    cudaFree(inv_freq);
  gemm.reset();
  weights.reset();
  if (stream)
    cudaStreamDestroy(stream);
}

void cuda_backend::impl::allocate_buffers() {
  const size_t elem = dtype_size(type);
  const int64_t hidden = config.hidden_size, inter = config.intermediate_size;
  const int64_t qkv_cols = config.q_size() + 2 * config.kv_size();
  auto alloc = [&](size_t bytes) {
    void* p = nullptr;
    ACTORSERVE_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 256)));
    allocations.push_back(p);
    return p;
  };
  const size_t t = size_t(max_tokens);
  residual = alloc(t * size_t(hidden) * elem);
  x = alloc(t * size_t(hidden) * elem);
  qkv = alloc(t * size_t(qkv_cols) * elem);
  attn = alloc(t * size_t(config.q_size()) * elem);
  gate_up = alloc(t * size_t(2 * inter) * elem);
  act = alloc(t * size_t(inter) * elem);
  // The graph path runs the LM head on every padded row, so logits hold max(max_seqs, rows).
  logits_in = alloc(size_t(max_seqs) * size_t(hidden) * elem);
  logits = alloc(size_t(max_seqs) * size_t(config.vocab_size) * elem);
  sampler_work = static_cast<float*>(alloc(size_t(max_seqs) * size_t(config.vocab_size) * sizeof(float)));
  if (weights->fp8) {
    // One linear weight dequantized to the compute dtype, for the GEMMs the fp8 kernel does not take.
    const int64_t largest = std::max({qkv_cols * hidden, hidden * config.q_size(), 2 * inter * hidden, hidden * inter});
    fp8_scratch = alloc(size_t(largest) * elem);
  }
  // Split-K scratch for up to eight blocks per multiprocessor of 16 rows.
  split_scratch_floats = int64_t(8) * sm_count * 16 * (config.head_dim + 2);
  split_scratch = static_cast<float*>(alloc(size_t(split_scratch_floats) * sizeof(float)));

  token_ids.allocate(t);
  positions.allocate(t);
  slots.allocate(t);
  block_tables.allocate(size_t(max_seqs) * size_t(max_blocks_per_seq));
  block_table_stride.allocate(1);
  logit_rows.allocate(size_t(max_seqs));
  items.allocate(size_t(max_items));
  sampler_rows.allocate(size_t(max_seqs));
  penalty_ids.allocate(4096);
  penalty_counts.allocate(4096);
  out_tokens.allocate(size_t(max_seqs));
  out_logprobs.allocate(size_t(max_seqs));
  out_lse.allocate(2 * size_t(max_seqs));
  logprob_rows.allocate(size_t(max_seqs));
  top_ids.allocate(size_t(max_seqs) * 64);
  top_logprobs.allocate(size_t(max_seqs) * 64);
}

void cuda_backend::impl::allocate_kv_cache() {
  const size_t elem = dtype_size(type);
  kv_block_bytes = size_t(block_size) * size_t(config.num_key_value_heads) * size_t(config.head_dim) * elem;
  const size_t bytes_per_block_all_layers = kv_block_bytes * 2 * size_t(config.num_hidden_layers);
  if (options.num_blocks > 0) {
    num_blocks = options.num_blocks;
  } else {
    size_t free_bytes = 0, total_bytes = 0;
    ACTORSERVE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double allowed = options.gpu_memory_utilization * double(total_bytes);
    const double used = double(total_bytes - free_bytes);
    const double reserve = 256.0 * 1024 * 1024; // graphs, cuBLAS internals, fragmentation
    const double budget = allowed - used - reserve;
    if (budget < double(bytes_per_block_all_layers))
      throw model_error("CUDA backend: no memory left for the KV cache (" + std::to_string(free_bytes >> 20) +
                        " MiB free of " + std::to_string(total_bytes >> 20) +
                        " MiB); raise gpu_memory_utilization or lower max_num_batched_tokens");
    num_blocks = int32_t(std::min(budget / double(bytes_per_block_all_layers), 2.0e9));
  }
  kv_layer_bytes = kv_block_bytes * size_t(num_blocks);
  const size_t total = kv_layer_bytes * 2 * size_t(config.num_hidden_layers);
  ACTORSERVE_CUDA_CHECK(cudaMalloc(&kv, total));
  // Zeroed so that stale NaN bit patterns never meet a zero attention weight.
  ACTORSERVE_CUDA_CHECK(cudaMemsetAsync(kv, 0, total, stream));
  stats.kv_cache_bytes = total;
  num_host_blocks = options.num_host_blocks;
  if (num_host_blocks > 0)
    ACTORSERVE_CUDA_CHECK(cudaMallocHost(&host_kv, kv_block_bytes * 2 * size_t(config.num_hidden_layers) *
                                                       size_t(num_host_blocks)));
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
  spdlog::info("cuda: KV cache {} blocks x {} tokens ({} MiB, {} tokens)", num_blocks, block_size, total >> 20,
               int64_t(num_blocks) * block_size);
}

void cuda_backend::impl::capture_graphs() {
  const auto start = clock_type::now();
  const int32_t max_batch = std::min(max_seqs, max_tokens);
  const std::vector<int32_t> sizes = graph_batch_sizes(max_batch);
  // Inputs of a do-nothing batch: token 0 at position 0, no KV writes, padding items.
  std::fill(token_ids.host(), token_ids.host() + max_batch, 0);
  std::fill(positions.host(), positions.host() + max_batch, 0);
  std::fill(slots.host(), slots.host() + max_batch, -1);
  for (int32_t i = 0; i < max_batch; ++i)
    items.host()[i] = {i, i, 0, 0};
  block_table_stride.host()[0] = 1;
  token_ids.upload(size_t(max_batch), stream);
  positions.upload(size_t(max_batch), stream);
  slots.upload(size_t(max_batch), stream);
  items.upload(size_t(max_batch), stream);
  block_table_stride.upload(1, stream);
  ACTORSERVE_CUDA_CHECK(cudaMemsetAsync(block_tables.device(), 0, sizeof(int32_t) * size_t(max_batch), stream));
  const bool small = small_tile_tokens > 0;
  for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
    const int32_t batch = *it;
    forward_plan plan;
    plan.num_tokens = batch;
    plan.num_small_items = small ? batch : 0;
    plan.num_large_items = small ? 0 : batch;
    plan.num_splits = splits_for(batch, max_model_len);
    plan.num_logit_rows = batch;
    plan.gather_logit_rows = false;
    gemm->set_tuning(true); // decode shapes: time the GEMM candidates once, here
    run_forward(plan);      // warm-up: kernel attributes and GEMM plans are set outside the capture
    gemm->set_tuning(false);
    ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph = nullptr;
    ACTORSERVE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      run_forward(plan);
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph)
        cudaGraphDestroy(graph);
      throw;
    }
    ACTORSERVE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    ACTORSERVE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    cudaGraphDestroy(graph);
    graphs[batch] = exec;
  }
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
  stats.num_graphs = int32_t(graphs.size());
  stats.graph_capture_seconds = seconds_since(start);
}

void cuda_backend::impl::copy_blocks(const std::vector<block_copy>& copies, cudaMemcpyKind kind) {
  const bool src_host = kind == cudaMemcpyHostToDevice, dst_host = kind == cudaMemcpyDeviceToHost;
  for (const auto& c : copies) {
    const int32_t src_limit = src_host ? num_host_blocks : num_blocks;
    const int32_t dst_limit = dst_host ? num_host_blocks : num_blocks;
    if (c.src < 0 || c.src >= src_limit || c.dst < 0 || c.dst >= dst_limit)
      throw model_error("block copy " + std::to_string(c.src) + " -> " + std::to_string(c.dst) +
                        " is outside the cache (" + std::to_string(src_limit) + " source, " +
                        std::to_string(dst_limit) + " destination blocks)");
  }
  const size_t host_layer_bytes = kv_block_bytes * size_t(num_host_blocks);
  for (int64_t l = 0; l < 2 * config.num_hidden_layers; ++l) { // K and V of every layer
    char* device_base = static_cast<char*>(kv) + size_t(l) * kv_layer_bytes;
    char* host_base = static_cast<char*>(host_kv) + size_t(l) * host_layer_bytes;
    for (const auto& c : copies) {
      char* src = (src_host ? host_base : device_base) + size_t(c.src) * kv_block_bytes;
      char* dst = (dst_host ? host_base : device_base) + size_t(c.dst) * kv_block_bytes;
      ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(dst, src, kv_block_bytes, kind, stream));
    }
  }
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

cuda_backend::cuda_backend(const std::filesystem::path& model_dir, const cuda_backend_options& options)
    : impl_(std::make_unique<impl>(model_dir, options)) {}
cuda_backend::~cuda_backend() = default;

const model_config& cuda_backend::config() const { return impl_->config; }
kv_cache_shape cuda_backend::kv_shape() const {
  return {impl_->num_blocks, impl_->num_host_blocks, impl_->block_size};
}
std::string cuda_backend::name() const { return "cuda:" + std::to_string(impl_->options.device); }

void cuda_backend::execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
                           std::vector<sampled_token>& out, std::vector<float>* logits) {
  ACTORSERVE_CUDA_CHECK(cudaSetDevice(impl_->options.device));
  impl_->execute(step, sampling, out, logits);
}

void cuda_backend::copy_blocks(const std::vector<block_copy>& copies) {
  impl_->copy_blocks(copies, cudaMemcpyDeviceToDevice);
}
void cuda_backend::swap_out(const std::vector<block_copy>& copies) {
  impl_->copy_blocks(copies, cudaMemcpyDeviceToHost);
}
void cuda_backend::swap_in(const std::vector<block_copy>& copies) { impl_->copy_blocks(copies, cudaMemcpyHostToDevice); }

const cuda_startup_stats& cuda_backend::startup() const { return impl_->stats; }
void cuda_backend::set_profiling(bool on) { impl_->profiler.enabled = on; }
std::vector<std::pair<std::string, double>> cuda_backend::profile() const {
  std::vector<std::pair<std::string, double>> out(impl_->profiler.total_ms.begin(), impl_->profiler.total_ms.end());
  out.emplace_back("steps", double(impl_->profiler.steps));
  return out;
}
void cuda_backend::reset_profile() {
  impl_->profiler.total_ms.clear();
  impl_->profiler.steps = 0;
}
void cuda_backend::set_graphs_enabled(bool on) { impl_->graphs_enabled = on && !impl_->graphs.empty(); }

} // namespace actorserve::gpu

namespace actorserve {

std::unique_ptr<backend> make_cuda_backend(const std::filesystem::path& model_dir, const cuda_backend_options& options) {
  return std::make_unique<gpu::cuda_backend>(model_dir, options);
}

} // namespace actorserve
