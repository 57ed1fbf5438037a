#include "model/estimate.hpp"

#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

namespace actorserve {

namespace {

using json = nlohmann::json;

constexpr int64_t mib = int64_t{1} << 20;
constexpr int64_t gib = int64_t{1} << 30;
constexpr int64_t cuda_graph_reserve_bytes = 512 * mib;
constexpr int64_t max_cuda_graph_batch = 512;
constexpr int64_t runtime_bytes_per_gpu = gib;
constexpr int64_t nccl_bytes_per_gpu = 512 * mib;
// fp32 logits plus fp32 probabilities for every sequence sampled in a step.
constexpr int64_t logits_bytes_per_vocab_entry = 8;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The fp32 row computes in fp32; every other row in the 16-bit activation dtype.
int64_t activation_bytes_of(weight_precision p) { return p == weight_precision::fp32 ? 4 : 2; }

std::optional<weight_precision> quantization_of(const json& q, int64_t& group_size) {
  if (!q.is_object())
    throw model_error("config.json: field 'quantization_config' must be an object");
  std::string method = q.value("quant_method", std::string{});
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char ch) { return std::tolower(ch); });
  auto bits = q.value("bits", int64_t{0});
  group_size = q.value("group_size", int64_t{0});
  if (method == "fp8" || method == "fbgemm_fp8")
    return weight_precision::fp8;
  if (method == "awq" || method == "gptq" || method == "marlin" || method == "gptq_marlin" || method == "awq_marlin") {
    if (bits == 8)
      return weight_precision::int8;
    if (bits != 0 && bits != 4)
      throw model_error("config.json: quantization_config bits " + std::to_string(bits) + " is not 4 or 8");
    return weight_precision::int4;
  }
  if (method == "compressed-tensors") {
    // config_groups.*.weights.{type,num_bits,group_size}; the first group describes the linears.
    if (auto groups = q.find("config_groups"); groups != q.end() && groups->is_object()) {
      for (const auto& [name, group] : groups->items()) {
        if (!group.is_object() || !group.contains("weights") || !group["weights"].is_object())
          continue;
        const auto& w = group["weights"];
        auto num_bits = w.value("num_bits", int64_t{0});
        auto type = w.value("type", std::string{});
        if (w.contains("group_size") && w["group_size"].is_number_integer())
          group_size = w["group_size"].get<int64_t>();
        if (num_bits == 8 && type == "float")
          return weight_precision::fp8;
        if (num_bits == 8)
          return weight_precision::int8;
        if (num_bits == 4)
          return weight_precision::int4;
        throw model_error("config.json: compressed-tensors group '" + name + "' has " + std::to_string(num_bits) +
                          "-bit weights; only 4 and 8 bits are estimated");
      }
    }
    throw model_error("config.json: compressed-tensors quantization_config without config_groups.*.weights");
  }
  throw model_error("config.json: quantization_config quant_method '" + method +
                    "' is not one of fp8, awq, gptq, compressed-tensors");
}

} // namespace

std::string_view precision_name(weight_precision p) {
  switch (p) {
    case weight_precision::fp32: return "fp32";
    case weight_precision::fp16: return "fp16";
    case weight_precision::bf16: return "bf16";
    case weight_precision::fp8: return "fp8";
    case weight_precision::int8: return "int8";
    case weight_precision::int4: return "int4";
  }
  return "?";
}

std::optional<weight_precision> parse_precision(std::string_view name) {
  if (name == "fp32" || name == "float32" || name == "float")
    return weight_precision::fp32;
  if (name == "fp16" || name == "float16" || name == "half")
    return weight_precision::fp16;
  if (name == "bf16" || name == "bfloat16")
    return weight_precision::bf16;
  if (name == "fp8")
    return weight_precision::fp8;
  if (name == "int8")
    return weight_precision::int8;
  if (name == "int4")
    return weight_precision::int4;
  return std::nullopt;
}

estimate_config parse_estimate_config(const std::string& json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw model_error(std::string("config.json: not valid JSON: ") + e.what());
  }
  estimate_config out;
  if (root.is_object() && root.contains("quantization_config")) {
    out.checkpoint_quantization = quantization_of(root["quantization_config"], out.checkpoint_group_size);
    root.erase("quantization_config");
  }
  out.model = parse_model_config(root.dump());
  return out;
}

estimate_config load_estimate_config(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw model_error(file.string() + ": cannot be opened");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return parse_estimate_config(text.str());
  } catch (const model_error& e) {
    throw model_error(file.string() + ": " + e.what());
  }
}

parameter_counts count_parameters(const model_config& c, int64_t int4_group_size) {
  if (int4_group_size <= 0)
    throw model_error("int4 group size must be positive, got " + std::to_string(int4_group_size));
  parameter_counts n;
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  // (in_features, out_features) of q, k, v, o, gate, up, down.
  const int64_t shapes[7][2] = {{hidden, q}, {hidden, kv}, {hidden, kv}, {q, hidden},
                                {hidden, inter}, {hidden, inter}, {inter, hidden}};
  for (const auto& [in, out] : shapes) {
    n.linear += in * out;
    n.linear_output_channels += out;
    n.int4_groups += out * ceil_div(in, int4_group_size);
  }
  n.linear *= c.num_hidden_layers;
  n.linear_output_channels *= c.num_hidden_layers;
  n.int4_groups *= c.num_hidden_layers;
  n.linear_scale_matrices = 7 * c.num_hidden_layers;

  int64_t per_layer_other = 2 * hidden;
  if (c.attention_bias)
    per_layer_other += q + 2 * kv;
  if (c.qk_norm)
    per_layer_other += 2 * c.head_dim;
  n.other = c.vocab_size * hidden * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * per_layer_other + hidden;
  return n;
}

const std::vector<gpu_spec>& common_gpus() {
  // memory.total in MiB as nvidia-smi lists it for each board.
  static const std::vector<gpu_spec> gpus = {
      {"T4 16GB", 16, 15360 * mib, false, false},
      {"L4 24GB", 24, 23034 * mib, true, true},
      {"A10 24GB", 24, 23028 * mib, false, true},
      {"A100 40GB", 40, 40960 * mib, false, true},
      {"A100 80GB", 80, 81920 * mib, false, true},
      {"H100 80GB", 80, 81559 * mib, true, true},
      {"H200 141GB", 141, 143771 * mib, true, true},
      {"B200 192GB", 192, 183359 * mib, true, true},
  };
  return gpus;
}

gpu_fit fit_on_gpu(const precision_estimate& p, const estimate_options& o, int64_t memory_bytes) {
  gpu_fit f;
  f.budget_bytes = static_cast<int64_t>(std::floor(o.gpu_memory_utilization * static_cast<double>(memory_bytes)));
  f.kv_budget_bytes = f.budget_bytes - p.weight_bytes - p.activation_bytes - p.cuda_graph_bytes - p.runtime_bytes;
  if (f.kv_budget_bytes > 0) {
    f.num_kv_blocks = f.kv_budget_bytes / (o.block_size * p.kv_bytes_per_token);
    f.max_sequences = f.num_kv_blocks / ceil_div(o.max_model_len, o.block_size);
  }
  f.fits = f.max_sequences >= o.concurrency;
  if (f.kv_budget_bytes <= 0)
    f.note = "weights, activations and overhead alone exceed the budget";
  else if (f.max_sequences == 0)
    f.note = "no room for one sequence of " + std::to_string(o.max_model_len) + " tokens";
  else if (!f.fits)
    f.note = "holds " + std::to_string(f.max_sequences) + " of " + std::to_string(o.concurrency) + " sequences";
  return f;
}

memory_estimate estimate_memory(const model_config& c, estimate_options o) {
  if (c.num_hidden_layers <= 0 || c.hidden_size <= 0 || c.head_dim <= 0 || c.num_key_value_heads <= 0)
    throw model_error("estimate: the model config has no layer shapes");
  if (o.max_model_len == 0)
    o.max_model_len = c.max_position_embeddings;
  if (o.max_model_len <= 0)
    throw model_error("estimate: max-model-len must be positive");
  if (o.concurrency <= 0)
    throw model_error("estimate: concurrency must be positive, got " + std::to_string(o.concurrency));
  if (o.max_num_seqs <= 0 || o.max_num_batched_tokens <= 0 || o.block_size <= 0)
    throw model_error("estimate: max-num-seqs, max-num-batched-tokens and block-size must be positive");
  if (!(o.gpu_memory_utilization > 0.0 && o.gpu_memory_utilization <= 1.0))
    throw model_error("estimate: gpu-memory-utilization must be in (0, 1], got " +
                      std::to_string(o.gpu_memory_utilization));
  const int64_t tp = o.tensor_parallel_size;
  if (tp <= 0 || c.num_attention_heads % tp != 0)
    throw model_error("estimate: tensor-parallel-size " + std::to_string(tp) + " does not divide the " +
                      std::to_string(c.num_attention_heads) + " attention heads");
  if (o.activation_dtype != weight_precision::bf16 && o.activation_dtype != weight_precision::fp16)
    throw model_error("estimate: the activation dtype must be bf16 or fp16");
  if (o.kv_cache_bytes < 0 || o.kv_cache_bytes > 4)
    throw model_error("estimate: kv cache element bytes must be 1, 2 or 4");

  memory_estimate e;
  e.params = count_parameters(c, o.int4_group_size);
  e.options = o;
  const auto& n = e.params;
  const int64_t q = c.q_size(), kv = c.kv_size();
  // Elements per token live at the larger of the attention and MLP peaks (see the header).
  const int64_t peak_elements_per_token = 2 * c.hidden_size + std::max(2 * q + 2 * kv, 3 * c.intermediate_size) / tp;
  const int64_t logit_rows = std::min(o.max_num_seqs, o.max_num_batched_tokens);
  const int64_t graph_batch = std::min(o.max_num_seqs, max_cuda_graph_batch);
  const int64_t kv_heads_per_gpu = ceil_div(c.num_key_value_heads, tp);

  for (auto precision : {weight_precision::fp32, o.activation_dtype, weight_precision::fp8, weight_precision::int8,
                         weight_precision::int4}) {
    precision_estimate p;
    p.precision = precision;
    const int64_t a = activation_bytes_of(precision);
    int64_t linear_bytes = 0;
    switch (precision) {
      case weight_precision::fp32: linear_bytes = n.linear * 4; break;
      case weight_precision::fp16:
      case weight_precision::bf16: linear_bytes = n.linear * 2; break;
      case weight_precision::fp8: linear_bytes = n.linear + n.linear_scale_matrices * 4; break;
      case weight_precision::int8: linear_bytes = n.linear + n.linear_output_channels * 4; break;
      // 4-bit weights pack two per byte; per group an fp16 scale (2 B) and a 4-bit zero (0.5 B).
      case weight_precision::int4: linear_bytes = ceil_div(n.linear, 2) + ceil_div(n.int4_groups * 5, 2); break;
    }
    p.weight_bytes = ceil_div(linear_bytes + n.other * a, tp);
    p.activation_bytes = o.max_num_batched_tokens * peak_elements_per_token * a +
                         logit_rows * c.vocab_size * logits_bytes_per_vocab_entry;
    p.cuda_graph_bytes = cuda_graph_reserve_bytes + graph_batch * peak_elements_per_token * a;
    p.runtime_bytes = runtime_bytes_per_gpu + (tp > 1 ? nccl_bytes_per_gpu : 0);
    const int64_t kv_element_bytes = o.kv_cache_bytes > 0 ? o.kv_cache_bytes : a;
    p.kv_bytes_per_token = 2 * c.num_hidden_layers * kv_heads_per_gpu * c.head_dim * kv_element_bytes;
    p.kv_bytes_per_sequence = ceil_div(o.max_model_len, o.block_size) * o.block_size * p.kv_bytes_per_token;
    p.kv_bytes = p.kv_bytes_per_sequence * o.concurrency;
    p.total_bytes = p.weight_bytes + p.activation_bytes + p.cuda_graph_bytes + p.runtime_bytes + p.kv_bytes;

    for (const auto& gpu : common_gpus()) {
      auto fit = fit_on_gpu(p, o, gpu.memory_bytes);
      fit.gpu = &gpu;
      const bool needs_bf16 = precision != weight_precision::fp32 && o.activation_dtype == weight_precision::bf16;
      if (precision == weight_precision::fp8 && !gpu.fp8) {
        fit.fits = false;
        fit.note = "fp8 needs compute capability 8.9+ (L4, H100, H200, B200)";
      } else if (needs_bf16 && !gpu.bf16) {
        // Same bytes in fp16; the memory verdict stands, the dtype must change.
        fit.note = (fit.note.empty() ? "" : fit.note + "; ") + "no bf16 on this GPU: serve with --dtype float16";
      }
      p.gpus.push_back(std::move(fit));
    }
    e.precisions.push_back(std::move(p));
  }
  return e;
}

} // namespace actorserve
