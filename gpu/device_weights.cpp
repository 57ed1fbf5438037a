#include "gpu/device_weights.hpp"

#include "gpu/cuda_check.hpp"
#include "model/error.hpp"
#include "model/safetensors.hpp"

#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

namespace actorserve::gpu {
namespace {

constexpr size_t kAlign = 256;
constexpr size_t kStagingBytes = size_t(32) << 20;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// One tensor to place at byte `dst_offset` of the allocation.
struct copy_job {
  const tensor_view* src = nullptr;
  size_t dst_offset = 0;
};

/// A piece of a job small enough for one staging buffer.
struct copy_chunk {
  const copy_job* job = nullptr;
  int64_t first = 0; // elements
  int64_t count = 0;
};

class layout_builder {
public:
  layout_builder(const safetensors_model& model, dtype type) : model_(model), elem_(dtype_size(type)) {}

  /// Reserves a slot for several tensors placed back to back (fused rows); returns its offset.
  size_t add(const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts) {
    const size_t slot = offset_;
    size_t at = offset_;
    for (const auto& [name, shape] : parts) {
      const tensor_view& t = model_.get(name);
      if (t.shape != shape)
        throw model_error("tensor " + name + " has shape " + shape_string(t.shape) + ", the config implies " +
                          shape_string(shape));
      if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16)
        throw model_error("tensor " + name + " has dtype " + std::string(dtype_name(t.type)) +
                          "; the CUDA backend reads F32, F16 and BF16");
      jobs_.push_back({&t, at});
      at += size_t(t.numel()) * elem_;
    }
    offset_ = align_up(at);
    return slot;
  }

  size_t total() const { return offset_; }
  const std::vector<copy_job>& jobs() const { return jobs_; }

private:
  const safetensors_model& model_;
  size_t elem_;
  size_t offset_ = 0;
  std::vector<copy_job> jobs_;
};

/// Converts `count` elements of `src` (type `from`) into `dst` (type `to`).
void convert(dtype from, const std::byte* src, dtype to, std::byte* dst, int64_t count, std::vector<float>& tmp) {
  if (from == to) {
    std::memcpy(dst, src, size_t(count) * dtype_size(to));
    return;
  }
  tmp.resize(size_t(count));
  convert_to_f32(from, src, tmp.data(), size_t(count));
  if (to == dtype::f32) {
    std::memcpy(dst, tmp.data(), size_t(count) * 4);
    return;
  }
  auto* out = reinterpret_cast<uint16_t*>(dst);
  if (to == dtype::bf16)
    for (int64_t i = 0; i < count; ++i)
      out[i] = f32_to_bf16(tmp[size_t(i)]);
  else
    for (int64_t i = 0; i < count; ++i)
      out[i] = f32_to_f16(tmp[size_t(i)]);
}

} // namespace

device_model_weights::~device_model_weights() {
  if (allocation)
    cudaFree(allocation);
}

std::unique_ptr<device_model_weights> load_device_weights(const model_config& c, const safetensors_model& model,
                                                          dtype type, int num_threads) {
  const auto start = std::chrono::steady_clock::now();
  if (type != dtype::f32 && type != dtype::f16 && type != dtype::bf16)
    throw model_error("CUDA backend: compute dtype must be float32, float16 or bfloat16");
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q = c.q_size(), kv = c.kv_size();

  layout_builder b(model, type);
  const size_t embed = b.add({{"model.embed_tokens.weight", {c.vocab_size, hidden}}});
  const size_t final_norm = b.add({{"model.norm.weight", {hidden}}});
  const size_t lm_head = c.tie_word_embeddings ? embed : b.add({{"lm_head.weight", {c.vocab_size, hidden}}});
  struct layer_offsets {
    size_t input_norm, qkv, qkv_bias, q_norm, k_norm, o, post_norm, gate_up, down;
  };
  std::vector<layer_offsets> offsets(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    layer_offsets& l = offsets[size_t(i)];
    l.input_norm = b.add({{p + "input_layernorm.weight", {hidden}}});
    l.qkv = b.add({{p + "self_attn.q_proj.weight", {q, hidden}},
                   {p + "self_attn.k_proj.weight", {kv, hidden}},
                   {p + "self_attn.v_proj.weight", {kv, hidden}}});
    l.qkv_bias = c.attention_bias ? b.add({{p + "self_attn.q_proj.bias", {q}},
                                           {p + "self_attn.k_proj.bias", {kv}},
                                           {p + "self_attn.v_proj.bias", {kv}}})
                                  : SIZE_MAX;
    l.q_norm = c.qk_norm ? b.add({{p + "self_attn.q_norm.weight", {c.head_dim}}}) : SIZE_MAX;
    l.k_norm = c.qk_norm ? b.add({{p + "self_attn.k_norm.weight", {c.head_dim}}}) : SIZE_MAX;
    l.o = b.add({{p + "self_attn.o_proj.weight", {hidden, q}}});
    l.post_norm = b.add({{p + "post_attention_layernorm.weight", {hidden}}});
    l.gate_up = b.add({{p + "mlp.gate_proj.weight", {inter, hidden}}, {p + "mlp.up_proj.weight", {inter, hidden}}});
    l.down = b.add({{p + "mlp.down_proj.weight", {hidden, inter}}});
  }

  auto w = std::make_unique<device_model_weights>();
  w->type = type;
  w->device_bytes = b.total();
  ACTORSERVE_CUDA_CHECK(cudaMalloc(&w->allocation, w->device_bytes));
  auto* base = static_cast<std::byte*>(w->allocation);
  auto at = [&](size_t off) -> const void* { return off == SIZE_MAX ? nullptr : base + off; };
  w->embed = at(embed);
  w->final_norm = at(final_norm);
  w->lm_head = at(lm_head);
  for (const auto& l : offsets)
    w->layers.push_back({at(l.input_norm), at(l.qkv), at(l.qkv_bias), at(l.q_norm), at(l.k_norm), at(l.o),
                         at(l.post_norm), at(l.gate_up), at(l.down)});

  // Chunks of at most kStagingBytes in both the file and the device dtype.
  const size_t out_elem = dtype_size(type);
  std::vector<copy_chunk> chunks;
  for (const auto& job : b.jobs()) {
    const size_t elem = std::max(out_elem, dtype_size(job.src->type));
    const int64_t per_chunk = int64_t(kStagingBytes / elem);
    for (int64_t first = 0; first < job.src->numel(); first += per_chunk)
      chunks.push_back({&job, first, std::min(per_chunk, job.src->numel() - first)});
    w->file_bytes += job.src->nbytes;
  }

  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  int device = 0;
  ACTORSERVE_CUDA_CHECK(cudaGetDevice(&device));
  auto worker = [&] {
    cudaStream_t stream = nullptr;
    void* staging[2] = {nullptr, nullptr};
    cudaEvent_t done[2] = {nullptr, nullptr};
    try {
      ACTORSERVE_CUDA_CHECK(cudaSetDevice(device));
      ACTORSERVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      for (int i = 0; i < 2; ++i) {
        ACTORSERVE_CUDA_CHECK(cudaMallocHost(&staging[i], kStagingBytes));
        ACTORSERVE_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
      }
      std::vector<float> tmp;
      for (int buf = 0;; buf ^= 1) {
        const size_t i = next.fetch_add(1);
        if (i >= chunks.size())
          break;
        const copy_chunk& ch = chunks[i];
        const tensor_view& src = *ch.job->src;
        ACTORSERVE_CUDA_CHECK(cudaEventSynchronize(done[buf])); // the buffer's previous copy finished
        convert(src.type, src.data + size_t(ch.first) * dtype_size(src.type), type,
                static_cast<std::byte*>(staging[buf]), ch.count, tmp);
        ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(base + ch.job->dst_offset + size_t(ch.first) * out_elem, staging[buf],
                                              size_t(ch.count) * out_elem, cudaMemcpyHostToDevice, stream));
        ACTORSERVE_CUDA_CHECK(cudaEventRecord(done[buf], stream));
      }
      ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error)
        error = std::current_exception();
    }
    if (stream)
      cudaStreamSynchronize(stream);
    for (int i = 0; i < 2; ++i) {
      if (staging[i])
        cudaFreeHost(staging[i]);
      if (done[i])
        cudaEventDestroy(done[i]);
    }
    if (stream)
      cudaStreamDestroy(stream);
  };
  std::vector<std::thread> threads;
  const int n = std::max(1, std::min<int>(num_threads, int(chunks.size())));
  for (int i = 0; i < n; ++i)
    threads.emplace_back(worker);
  for (auto& t : threads)
    t.join();
  if (error)
    std::rethrow_exception(error);
  w->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return w;
}

} // namespace actorserve::gpu
