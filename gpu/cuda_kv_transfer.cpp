// KV export/import of the CUDA backend for migration by KV shipping (layout: model/backend.hpp,
// kv_transfer_layout): per (layer, K|V), the sequence's positions in order, copied device<->host
// one block run at a time (a block's slots are contiguous in the cache), in the cache's dtype.
#include "gpu/cuda_backend.hpp"
#include "gpu/cuda_backend_impl.hpp"
#include "gpu/cuda_check.hpp"
#include "model/error.hpp"
#include "model/kv_transfer.hpp"

namespace actorserve::gpu {

namespace {
const char* kv_dtype_name(dtype t) { // the names kv_transfer_layout uses (the CPU backend: "f32")
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
    default: return "other";
  }
}

// The cache as export/import sees it: per layer K then V, each [num_blocks, block_size, token].
struct cache_view {
  char* kv;
  size_t layer_bytes, block_bytes;
  int32_t block_size;
  int64_t num_layers;
};

// Calls fn(offset in the payload, device address, bytes) for every contiguous run, in payload order.
template <class Fn>
void for_each_run(const cache_view& c, const std::vector<int32_t>& table, int32_t num_tokens, int32_t data_tokens,
                  Fn&& fn) {
  const size_t token_bytes = c.block_bytes / size_t(c.block_size);
  for (int64_t l = 0; l < 2 * c.num_layers; ++l) {
    char* base = c.kv + size_t(l) * c.layer_bytes;
    for (int32_t p = 0; p < num_tokens; p += c.block_size) {
      const int32_t run = std::min(c.block_size, num_tokens - p);
      char* device = base + size_t(table[size_t(p / c.block_size)]) * c.block_bytes;
      fn((size_t(l) * size_t(data_tokens) + size_t(p)) * token_bytes, device, size_t(run) * token_bytes);
    }
  }
}
} // namespace

std::optional<kv_transfer_layout> cuda_backend::kv_transfer() const {
  const dtype t = impl_->type;
  if (t != dtype::f32 && t != dtype::f16 && t != dtype::bf16)
    return std::nullopt;
  return kv_transfer_layout{int32_t(impl_->config.num_hidden_layers), int32_t(impl_->config.num_key_value_heads),
                            int32_t(impl_->config.head_dim), kv_dtype_name(t), int32_t(dtype_size(t))};
}

void cuda_backend::export_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, std::string& out) {
  const auto layout = kv_transfer();
  if (!layout)
    throw model_error("the " + name() + " backend cannot export a KV cache of this dtype");
  check_kv_export(*layout, impl_->block_size, impl_->num_blocks, block_table, num_tokens);
  ACTORSERVE_CUDA_CHECK(cudaSetDevice(impl_->options.device));
  const size_t at = out.size();
  out.resize(at + size_t(num_tokens) * size_t(layout->token_bytes()));
  const cache_view view{static_cast<char*>(impl_->kv), impl_->kv_layer_bytes, impl_->kv_block_bytes,
                        impl_->block_size, impl_->config.num_hidden_layers};
  for_each_run(view, block_table, num_tokens, num_tokens, [&](size_t offset, char* device, size_t bytes) {
    ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(&out[at + offset], device, bytes, cudaMemcpyDeviceToHost, impl_->stream));
  });
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void cuda_backend::import_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                             std::string_view data) {
  const auto layout = kv_transfer();
  if (!layout)
    throw model_error("the " + name() + " backend cannot import a KV cache of this dtype");
  check_kv_import(*layout, impl_->block_size, impl_->num_blocks, block_table, num_tokens, data_tokens, data);
  ACTORSERVE_CUDA_CHECK(cudaSetDevice(impl_->options.device));
  const cache_view view{static_cast<char*>(impl_->kv), impl_->kv_layer_bytes, impl_->kv_block_bytes,
                        impl_->block_size, impl_->config.num_hidden_layers};
  for_each_run(view, block_table, num_tokens, data_tokens, [&](size_t offset, char* device, size_t bytes) {
    ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(device, data.data() + offset, bytes, cudaMemcpyHostToDevice, impl_->stream));
  });
  // The source is pageable host memory owned by the caller: finish before returning.
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

} // namespace actorserve::gpu
