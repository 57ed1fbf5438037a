#pragma once
// config.json of Hugging Face causal LMs: Llama, Qwen2, Qwen3 and Mistral.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace actorserve {

enum class model_arch { llama, qwen2, qwen3, mistral };

std::string_view arch_name(model_arch a); // "llama", "qwen2", ...

enum class rope_scaling_type { none, linear, llama3 };

struct rope_scaling_config {
  rope_scaling_type type = rope_scaling_type::none;
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct model_config {
  model_arch arch = model_arch::llama;
  std::string architecture; // the class name from config.json, e.g. "LlamaForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0; // GQA: divides num_attention_heads
  int64_t head_dim = 0;            // defaults to hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  rope_scaling_config rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false; // q/k/v projections carry a bias (Qwen2)
  bool qk_norm = false;        // per-head RMSNorm on q and k before rope (Qwen3)
  std::string torch_dtype;     // "bfloat16", "float16", "float32"
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

/// Parses the text of a config.json. Throws model_error naming the field for a missing or
/// invalid field, an unknown architecture, or an option that would change results and is not
/// supported (e.g. an active sliding window).
model_config parse_model_config(const std::string& json_text);

/// Reads DIR/config.json.
model_config load_model_config(const std::filesystem::path& model_dir);

/// Serializes a config in Hugging Face's config.json form (used by make-model).
std::string model_config_to_json(const model_config& c);

} // namespace actorserve
