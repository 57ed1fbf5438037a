#include "model/cpu_weights.hpp"

#include "model/error.hpp"
#include "model/safetensors.hpp"
#include "model/thread_pool.hpp"

#include <string>

namespace actorserve {
namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class weight_reader {
public:
  weight_reader(const safetensors_model& model, thread_pool& pool) : model_(model), pool_(pool) {}

  /// Converts tensor `name` of shape `shape` into dst[offset, offset + numel).
  void read_into(const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& dst,
                 size_t offset = 0) const {
    const tensor_view& t = model_.get(name);
    if (t.shape != shape)
      throw model_error("tensor " + name + " has shape " + shape_string(t.shape) + ", the config implies " +
                        shape_string(shape));
    if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16)
      throw model_error("tensor " + name + " has dtype " + std::string(dtype_name(t.type)) +
                        "; the CPU backend reads F32, F16 and BF16 weights");
    const size_t n = size_t(t.numel());
    if (dst.size() < offset + n)
      dst.resize(offset + n);
    // Converting is memory-bound; chunks of 1 Mi elements let both cores help on big tensors.
    const size_t elem = dtype_size(t.type);
    const int64_t chunk = 1 << 20;
    pool_.parallel_for((int64_t(n) + chunk - 1) / chunk, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const size_t begin = size_t(c * chunk);
        const size_t count = std::min(n - begin, size_t(chunk));
        convert_to_f32(t.type, t.data + begin * elem, dst.data() + offset + begin, count);
      }
    });
  }

  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const {
    std::vector<float> v;
    read_into(name, shape, v);
    return v;
  }

private:
  const safetensors_model& model_;
  thread_pool& pool_;
};

int64_t total(const std::vector<float>& v) { return int64_t(v.size()); }

} // namespace

int64_t cpu_model_weights::num_params() const {
  int64_t n = total(embed) + total(final_norm) + total(lm_head);
  for (const auto& l : layers)
    n += total(l.input_norm) + total(l.qkv) + total(l.qkv_bias) + total(l.q_norm) + total(l.k_norm) + total(l.o) +
         total(l.post_norm) + total(l.gate_up) + total(l.down);
  return n;
}

cpu_model_weights load_cpu_weights(const model_config& c, const safetensors_model& model, thread_pool& pool) {
  const weight_reader r(model, pool);
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q = c.q_size(), kv = c.kv_size();
  cpu_model_weights w;
  w.embed = r.read("model.embed_tokens.weight", {c.vocab_size, hidden});
  w.final_norm = r.read("model.norm.weight", {hidden});
  // A tied checkpoint usually omits lm_head; when it is there anyway it must be the embedding.
  if (!c.tie_word_embeddings)
    w.lm_head = r.read("lm_head.weight", {c.vocab_size, hidden});
  w.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    cpu_layer_weights& l = w.layers[size_t(i)];
    l.input_norm = r.read(p + "input_layernorm.weight", {hidden});
    l.post_norm = r.read(p + "post_attention_layernorm.weight", {hidden});
    l.qkv.resize(size_t((q + 2 * kv) * hidden));
    r.read_into(p + "self_attn.q_proj.weight", {q, hidden}, l.qkv, 0);
    r.read_into(p + "self_attn.k_proj.weight", {kv, hidden}, l.qkv, size_t(q * hidden));
    r.read_into(p + "self_attn.v_proj.weight", {kv, hidden}, l.qkv, size_t((q + kv) * hidden));
    if (c.attention_bias) {
      l.qkv_bias.resize(size_t(q + 2 * kv));
      r.read_into(p + "self_attn.q_proj.bias", {q}, l.qkv_bias, 0);
      r.read_into(p + "self_attn.k_proj.bias", {kv}, l.qkv_bias, size_t(q));
      r.read_into(p + "self_attn.v_proj.bias", {kv}, l.qkv_bias, size_t(q + kv));
    }
    if (c.qk_norm) {
      l.q_norm = r.read(p + "self_attn.q_norm.weight", {c.head_dim});
      l.k_norm = r.read(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    l.o = r.read(p + "self_attn.o_proj.weight", {hidden, q});
    l.gate_up.resize(size_t(2 * inter * hidden));
    r.read_into(p + "mlp.gate_proj.weight", {inter, hidden}, l.gate_up, 0);
    r.read_into(p + "mlp.up_proj.weight", {inter, hidden}, l.gate_up, size_t(inter * hidden));
    l.down = r.read(p + "mlp.down_proj.weight", {hidden, inter});
  }
  return w;
}

} // namespace actorserve
