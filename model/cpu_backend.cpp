// The CPU reference backend: one step = embedding, then per layer RMSNorm -> fused qkv matmul
// (+bias) -> per-head q/k RMSNorm (Qwen3) -> rope -> write K/V into the paged cache ->
// attention over the cache -> o_proj -> residual -> RMSNorm -> fused gate/up matmul -> SiLU
// gate -> down -> residual; then the final norm and lm_head for the rows that need logits only.
#include "model/cpu_backend.hpp"

#include "model/cpu_attention.hpp"
#include "model/cpu_kernels.hpp"
#include "model/cpu_kv_cache.hpp"
#include "model/cpu_rope.hpp"
#include "model/cpu_weights.hpp"
#include "model/error.hpp"
#include "model/kv_transfer.hpp"
#include "model/safetensors.hpp"
#include "model/fp8.hpp"
#include "model/thread_pool.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

namespace actorserve {
namespace {

// Per-step activations, grown to the largest step seen and then reused.
struct activations {
  std::vector<float> x;       // [num_tokens, hidden]: the residual stream
  std::vector<float> h;       // [num_tokens, hidden]: normed input of a sublayer, then its output
  std::vector<float> qkv;     // [num_tokens, q_size + 2 * kv_size]
  std::vector<float> attn;    // [num_tokens, q_size]
  std::vector<float> gate_up; // [num_tokens, 2 * intermediate]
  std::vector<float> act;     // [num_tokens, intermediate]
  std::vector<float> last;    // [num_logits, hidden]
  std::vector<float> logits;  // [num_logits, vocab]
};

void grow(std::vector<float>& v, int64_t n) {
  if (int64_t(v.size()) < n)
    v.resize(size_t(n));
}

int32_t default_num_blocks(const model_config& c, const cpu_backend_options& o) {
  if (o.block_size <= 0)
    throw model_error("block_size must be positive, got " + std::to_string(o.block_size));
  if (o.num_blocks > 0)
    return o.num_blocks;
  int64_t tokens = o.max_kv_tokens;
  if (tokens <= 0)
    tokens = std::min<int64_t>(4 * std::max<int64_t>(c.max_position_embeddings, 1), 65536);
  const int64_t blocks = (tokens + o.block_size - 1) / o.block_size;
  if (blocks > INT32_MAX)
    throw model_error("max_kv_tokens " + std::to_string(tokens) + " needs more than 2^31 blocks");
  return int32_t(blocks);
}

class cpu_backend final : public backend {
public:
  cpu_backend(const std::filesystem::path& dir, const cpu_backend_options& o)
      : config_(load_model_config(dir)), pool_(o.num_threads),
        weights_(load_cpu_weights(config_, safetensors_model(dir), pool_)),
        cache_(int32_t(config_.num_hidden_layers), default_num_blocks(config_, o), o.num_host_blocks, o.block_size,
               int32_t(config_.num_key_value_heads), int32_t(config_.head_dim)),
        inv_freq_(rope_inv_freq(config_)) {
    if (config_.head_dim % 2 != 0 || config_.head_dim > 1024)
      throw model_error("head_dim " + std::to_string(config_.head_dim) +
                        " is not supported by the CPU backend (even, at most 1024)");
    dims_.num_heads = config_.num_attention_heads;
    dims_.num_kv_heads = config_.num_key_value_heads;
    dims_.head_dim = config_.head_dim;
    dims_.scale = float(1.0 / std::sqrt(double(config_.head_dim)));
    if (o.quantization == "fp8")
      round_linear_weights_to_fp8();
    else if (!o.quantization.empty() && o.quantization != "none")
      throw model_error("quantization '" + o.quantization + "' is not supported by the CPU backend (none, fp8)");
  }

  // Row by row, in parallel over each matrix's rows (rows round independently).
  void round_linear_weights_to_fp8() {
    auto round_matrix = [&](std::vector<float>& w, int64_t rows) {
      const int64_t cols = int64_t(w.size()) / rows;
      pool_.parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
        round_rows_to_e4m3(w.data() + begin * cols, end - begin, cols);
      });
    };
    const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size;
    const int64_t q = config_.num_attention_heads * config_.head_dim, kv = config_.num_key_value_heads * config_.head_dim;
    for (cpu_layer_weights& l : weights_.layers) {
      round_matrix(l.qkv, q + 2 * kv);
      round_matrix(l.o, hidden);
      round_matrix(l.gate_up, 2 * inter);
      round_matrix(l.down, hidden);
    }
  }

  const model_config& config() const override { return config_; }
  kv_cache_shape kv_shape() const override {
    return {cache_.num_blocks(), cache_.num_host_blocks(), cache_.block_size()};
  }
  std::string name() const override { return "cpu"; }

  void execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
               std::vector<sampled_token>& out, std::vector<float>* logits_out) override {
    check(step, sampling);
    const int64_t hidden = config_.hidden_size, vocab = config_.vocab_size;
    forward_layers(step);

    // Final norm and lm_head only for the last new token of sequences that need logits.
    const int64_t num_logits = step.num_logits();
    out.clear();
    if (logits_out)
      logits_out->clear();
    if (num_logits == 0)
      return;
    grow(a_.last, num_logits * hidden);
    grow(a_.logits, num_logits * vocab);
    int64_t row = 0, t = 0;
    for (const auto& s : step.seqs) {
      t += s.num_new_tokens;
      if (s.needs_logits)
        std::memcpy(&a_.last[size_t(row++ * hidden)], &a_.x[size_t((t - 1) * hidden)], size_t(hidden) * sizeof(float));
    }
    cpu::rmsnorm(a_.last.data(), weights_.final_norm.data(), num_logits, hidden, eps(), a_.last.data());
    cpu::matmul(pool_, a_.last.data(), num_logits, hidden, weights_.lm_head_data(), vocab, nullptr, a_.logits.data());
    if (logits_out)
      logits_out->assign(a_.logits.begin(), a_.logits.begin() + num_logits * vocab);
    out.reserve(size_t(num_logits));
    for (int64_t i = 0; i < num_logits; ++i)
      out.push_back(sample_token(&a_.logits[size_t(i * vocab)], int32_t(vocab), *sampling[size_t(i)]));
  }

  void copy_blocks(const std::vector<block_copy>& copies) override { cache_.copy_blocks(copies); }
  void swap_out(const std::vector<block_copy>& copies) override { cache_.swap_out(copies); }
  void swap_in(const std::vector<block_copy>& copies) override { cache_.swap_in(copies); }

  std::optional<kv_transfer_layout> kv_transfer() const override {
    return kv_transfer_layout{int32_t(config_.num_hidden_layers), int32_t(config_.num_key_value_heads),
                              int32_t(config_.head_dim), "f32", int32_t(sizeof(float))};
  }

  // Token-major per (layer, k|v): [layer][kv][token][kv_heads * head_dim] fp32.
  void export_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, std::string& out) override {
    const kv_transfer_layout layout = *kv_transfer();
    check_kv_export(layout, cache_.block_size(), cache_.num_blocks(), block_table, num_tokens);
    const size_t token_bytes = size_t(cache_.token_stride()) * sizeof(float);
    size_t at = out.size();
    out.resize(at + size_t(num_tokens) * size_t(layout.token_bytes()));
    for_each_slot(block_table, num_tokens, [&](int32_t layer, int32_t kv, int32_t, int32_t block, int32_t slot) {
      const float* src = kv ? cache_.v(layer, block, slot) : cache_.k(layer, block, slot);
      std::memcpy(&out[at], src, token_bytes);
      at += token_bytes;
    });
  }

  void import_kv(const std::vector<int32_t>& block_table, int32_t num_tokens, int32_t data_tokens,
                 std::string_view data) override {
    const kv_transfer_layout layout = *kv_transfer();
    check_kv_import(layout, cache_.block_size(), cache_.num_blocks(), block_table, num_tokens, data_tokens, data);
    const size_t token_bytes = size_t(cache_.token_stride()) * sizeof(float);
    for_each_slot(block_table, num_tokens, [&](int32_t layer, int32_t kv, int32_t p, int32_t block, int32_t slot) {
      // Sections (layer, kv) are data_tokens long; only the first num_tokens of each are read.
      const size_t at = ((size_t(layer) * 2 + size_t(kv)) * size_t(data_tokens) + size_t(p)) * token_bytes;
      float* dst = kv ? cache_.v(layer, block, slot) : cache_.k(layer, block, slot);
      std::memcpy(dst, &data[at], token_bytes);
    });
  }

private:
  float eps() const { return float(config_.rms_norm_eps); }

  // Calls fn(layer, kv, position, block, slot) for positions [0, num_tokens) in transfer order
  // (layer, then k/v, then position).
  template <class Fn> void for_each_slot(const std::vector<int32_t>& table, int32_t num_tokens, Fn&& fn) {
    const int32_t bs = cache_.block_size();
    for (int32_t layer = 0; layer < int32_t(config_.num_hidden_layers); ++layer)
      for (int32_t kv = 0; kv < 2; ++kv)
        for (int32_t p = 0; p < num_tokens; ++p)
          fn(layer, kv, p, table[size_t(p / bs)], p % bs);
  }

  void check(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling) const {
    if (std::string problem = step.validate(cache_.block_size(), cache_.num_blocks()); !problem.empty())
      throw model_error("invalid step: " + problem);
    for (int32_t id : step.token_ids)
      if (id < 0 || id >= config_.vocab_size)
        throw model_error("invalid step: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(config_.vocab_size) + ")");
    if (int64_t(sampling.size()) != step.num_logits())
      throw model_error("invalid step: " + std::to_string(sampling.size()) + " sampling states for " +
                        std::to_string(step.num_logits()) + " sequences that need logits");
    for (const auto* s : sampling)
      if (!s)
        throw model_error("invalid step: null sampling state");
  }

  void forward_layers(const step_batch& step) {
    const int64_t n = step.num_tokens(), hidden = config_.hidden_size, inter = config_.intermediate_size;
    const int64_t q_size = config_.q_size(), kv_size = config_.kv_size(), d = config_.head_dim;
    const int64_t qkv_cols = q_size + 2 * kv_size;
    grow(a_.x, n * hidden);
    grow(a_.h, n * hidden);
    grow(a_.qkv, n * qkv_cols);
    grow(a_.attn, n * q_size);
    grow(a_.gate_up, n * 2 * inter);
    grow(a_.act, n * inter);
    for (int64_t t = 0; t < n; ++t)
      std::memcpy(&a_.x[size_t(t * hidden)], &weights_.embed[size_t(step.token_ids[size_t(t)] * hidden)],
                  size_t(hidden) * sizeof(float));

    for (int32_t layer = 0; layer < int32_t(weights_.layers.size()); ++layer) {
      const cpu_layer_weights& w = weights_.layers[size_t(layer)];
      cpu::rmsnorm(a_.x.data(), w.input_norm.data(), n, hidden, eps(), a_.h.data());
      cpu::matmul(pool_, a_.h.data(), n, hidden, w.qkv.data(), qkv_cols, w.qkv_bias.empty() ? nullptr : w.qkv_bias.data(),
                  a_.qkv.data());
      for (int64_t t = 0; t < n; ++t) {
        float* q = &a_.qkv[size_t(t * qkv_cols)];
        float* k = q + q_size;
        if (!w.q_norm.empty()) {
          cpu::rmsnorm(q, w.q_norm.data(), dims_.num_heads, d, eps(), q);
          cpu::rmsnorm(k, w.k_norm.data(), dims_.num_kv_heads, d, eps(), k);
        }
        const int32_t pos = step.positions[size_t(t)];
        apply_rope(q, dims_.num_heads, d, pos, inv_freq_.data());
        apply_rope(k, dims_.num_kv_heads, d, pos, inv_freq_.data());
      }
      write_kv(step, a_.qkv.data(), qkv_cols, dims_, cache_, layer);
      paged_attention(pool_, step, a_.qkv.data(), qkv_cols, dims_, cache_, layer, a_.attn.data());
      cpu::matmul(pool_, a_.attn.data(), n, q_size, w.o.data(), hidden, nullptr, a_.h.data());
      cpu::add_inplace(a_.x.data(), a_.h.data(), n * hidden);

      cpu::rmsnorm(a_.x.data(), w.post_norm.data(), n, hidden, eps(), a_.h.data());
      cpu::matmul(pool_, a_.h.data(), n, hidden, w.gate_up.data(), 2 * inter, nullptr, a_.gate_up.data());
      cpu::silu_mul(a_.gate_up.data(), n, inter, a_.act.data());
      cpu::matmul(pool_, a_.act.data(), n, inter, w.down.data(), hidden, nullptr, a_.h.data());
      cpu::add_inplace(a_.x.data(), a_.h.data(), n * hidden);
    }
  }

  model_config config_;
  thread_pool pool_;
  cpu_model_weights weights_;
  cpu_kv_cache cache_;
  std::vector<float> inv_freq_; // [head_dim / 2]
  attention_dims dims_;
  activations a_;
};

} // namespace

std::unique_ptr<backend> make_cpu_backend(const std::filesystem::path& model_dir, const cpu_backend_options& options) {
  return std::make_unique<cpu_backend>(model_dir, options);
}

} // namespace actorserve
