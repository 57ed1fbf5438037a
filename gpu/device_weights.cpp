#include "gpu/device_weights.hpp"

#include "gpu/cuda_check.hpp"
#include "gpu/fp8_linear.hpp"
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
  int region = 0; // 0: the weights' allocation, 1: the fp32 staging of weights to quantize
};

/// A piece of a job small enough for one staging buffer.
struct copy_chunk {
  const copy_job* job = nullptr;
  int64_t first = 0; // elements
  int64_t count = 0;
};

class layout_builder {
public:
  layout_builder(const safetensors_model& model, dtype type, int region = 0)
      : model_(model), elem_(dtype_size(type)), region_(region) {}

  /// Reserves `bytes` that no tensor is copied into (E4M3 weights and scales written on the device).
  size_t reserve(size_t bytes) {
    const size_t slot = offset_;
    offset_ = align_up(offset_ + bytes);
    return slot;
  }

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
      jobs_.push_back({&t, at, region_});
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
  int region_;
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
                                                          dtype type, int num_threads, bool fp8) {
  const auto start = std::chrono::steady_clock::now();
  if (type != dtype::f32 && type != dtype::f16 && type != dtype::bf16)
    throw model_error("CUDA backend: compute dtype must be float32, float16 or bfloat16");
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q = c.q_size(), kv = c.kv_size();

  layout_builder b(model, type);
  layout_builder raw(model, dtype::f32, 1); // fp8: checkpoint values of the weights to quantize
  // A fused linear weight [rows, cols]: in the compute dtype, or (fp8) staged in fp32 for the
  // quantization with its E4M3 bytes and scales reserved in the allocation.
  struct linear_slot {
    size_t weight = SIZE_MAX, scales = SIZE_MAX, staged = SIZE_MAX;
    int64_t rows = 0, cols = 0;
  };
  auto add_linear = [&](const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts) {
    linear_slot s;
    s.cols = parts.front().second[1];
    for (const auto& part : parts)
      s.rows += part.second[0];
    if (!fp8) {
      s.weight = b.add(parts);
      return s;
    }
    s.staged = raw.add(parts);
    s.weight = b.reserve(size_t(s.rows * s.cols));
    s.scales = b.reserve(size_t(s.rows) * sizeof(float));
    return s;
  };
  const size_t embed = b.add({{"model.embed_tokens.weight", {c.vocab_size, hidden}}});
  const size_t final_norm = b.add({{"model.norm.weight", {hidden}}});
  const size_t lm_head = c.tie_word_embeddings ? embed : b.add({{"lm_head.weight", {c.vocab_size, hidden}}});
  struct layer_offsets {
    size_t input_norm, qkv_bias, q_norm, k_norm, post_norm;
    linear_slot qkv, o, gate_up, down;
  };
  std::vector<layer_offsets> offsets(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    layer_offsets& l = offsets[size_t(i)];
    l.input_norm = b.add({{p + "input_layernorm.weight", {hidden}}});
    l.qkv = add_linear({{p + "self_attn.q_proj.weight", {q, hidden}},
                   {p + "self_attn.k_proj.weight", {kv, hidden}},
                   {p + "self_attn.v_proj.weight", {kv, hidden}}});
    l.qkv_bias = c.attention_bias ? b.add({{p + "self_attn.q_proj.bias", {q}},
                                           {p + "self_attn.k_proj.bias", {kv}},
                                           {p + "self_attn.v_proj.bias", {kv}}})
                                  : SIZE_MAX;
    l.q_norm = c.qk_norm ? b.add({{p + "self_attn.q_norm.weight", {c.head_dim}}}) : SIZE_MAX;
    l.k_norm = c.qk_norm ? b.add({{p + "self_attn.k_norm.weight", {c.head_dim}}}) : SIZE_MAX;
    l.o = add_linear({{p + "self_attn.o_proj.weight", {hidden, q}}});
    l.post_norm = b.add({{p + "post_attention_layernorm.weight", {hidden}}});
    l.gate_up =
        add_linear({{p + "mlp.gate_proj.weight", {inter, hidden}}, {p + "mlp.up_proj.weight", {inter, hidden}}});
    l.down = add_linear({{p + "mlp.down_proj.weight", {hidden, inter}}});
  }

  auto w = std::make_unique<device_model_weights>();
  w->type = type;
  w->fp8 = fp8;
  w->device_bytes = b.total();
  ACTORSERVE_CUDA_CHECK(cudaMalloc(&w->allocation, w->device_bytes));
  auto* base = static_cast<std::byte*>(w->allocation);
  void* staged = nullptr; // freed on every path out (a unique_ptr with cudaFree)
  std::unique_ptr<void, decltype(&cudaFree)> staged_owner(nullptr, &cudaFree);
  if (fp8 && raw.total() > 0) {
    ACTORSERVE_CUDA_CHECK(cudaMalloc(&staged, raw.total()));
    staged_owner.reset(staged);
  }
  auto* staged_base = static_cast<std::byte*>(staged);
  auto at = [&](size_t off) -> const void* { return off == SIZE_MAX ? nullptr : base + off; };
  auto scale_at = [&](size_t off) { return static_cast<const float*>(at(off)); };
  w->embed = at(embed);
  w->final_norm = at(final_norm);
  w->lm_head = at(lm_head);
  for (const auto& l : offsets)
    w->layers.push_back({at(l.input_norm), at(l.qkv.weight), at(l.qkv_bias), at(l.q_norm), at(l.k_norm),
                         at(l.o.weight), at(l.post_norm), at(l.gate_up.weight), at(l.down.weight),
                         scale_at(l.qkv.scales), scale_at(l.o.scales), scale_at(l.gate_up.scales),
                         scale_at(l.down.scales)});

  // Chunks of at most kStagingBytes in both the file and the device dtype.
  const dtype region_type[2] = {type, dtype::f32};
  std::byte* region_base[2] = {base, staged_base};
  std::vector<copy_job> jobs = b.jobs();
  jobs.insert(jobs.end(), raw.jobs().begin(), raw.jobs().end());
  std::vector<copy_chunk> chunks;
  for (const auto& job : jobs) {
    const size_t elem = std::max(dtype_size(region_type[job.region]), dtype_size(job.src->type));
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
        const dtype to = region_type[ch.job->region];
        const size_t out_elem = dtype_size(to);
        convert(src.type, src.data + size_t(ch.first) * dtype_size(src.type), to,
                static_cast<std::byte*>(staging[buf]), ch.count, tmp);
        ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(region_base[ch.job->region] + ch.job->dst_offset +
                                                  size_t(ch.first) * out_elem,
                                              staging[buf], size_t(ch.count) * out_elem, cudaMemcpyHostToDevice,
                                              stream));
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
  if (fp8) {
    // Every copy has finished (each worker synchronized its stream): quantize on the default stream.
    for (const auto& l : offsets)
      for (const linear_slot* s : {&l.qkv, &l.o, &l.gate_up, &l.down})
        launch_quantize_rows_e4m3(reinterpret_cast<uint8_t*>(base + s->weight),
                                  reinterpret_cast<float*>(base + s->scales),
                                  reinterpret_cast<const float*>(staged_base + s->staged), s->rows, s->cols, nullptr);
    ACTORSERVE_CUDA_CHECK(cudaDeviceSynchronize());
  }
  w->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return w;
}

} // namespace actorserve::gpu
