// `actorserve estimate`: which GPU a model needs, from its config.json alone (see
// model/estimate.hpp for the formulas). Text tables by default, one JSON object with --json.

#include "gateway/cli/command.hpp"
#include "model/error.hpp"
#include "model/estimate.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace actorserve::cli {
namespace {

struct estimate_args {
  std::string model_dir;
  std::string config_file;
  std::string dtype = "auto";
  std::string quantization;
  estimate_options options;
  bool json = false;
};

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", static_cast<double>(bytes) / double(int64_t{1} << 30));
  return text;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width)
    s.append(width - s.size(), ' ');
  return s;
}

weight_precision choose_precision(const estimate_args& a, const estimate_config& c, weight_precision activation) {
  if (!a.quantization.empty() && a.quantization != "none") {
    if (a.quantization == "awq" || a.quantization == "gptq")
      return weight_precision::int4;
    if (auto p = parse_precision(a.quantization); p && *p != weight_precision::fp32 && *p != weight_precision::fp16 &&
                                                     *p != weight_precision::bf16)
      return *p;
    throw model_error("--quantization '" + a.quantization + "' is not one of none, fp8, int8, int4, awq, gptq");
  }
  if (c.checkpoint_quantization)
    return *c.checkpoint_quantization;
  if (a.dtype == "float32" || (a.dtype == "auto" && c.model.torch_dtype == "float32"))
    return weight_precision::fp32;
  return activation;
}

weight_precision choose_activation(const estimate_args& a, const estimate_config& c) {
  if (a.dtype == "auto")
    return c.model.torch_dtype == "float16" ? weight_precision::fp16 : weight_precision::bf16;
  if (a.dtype == "float16" || a.dtype == "half")
    return weight_precision::fp16;
  if (a.dtype == "bfloat16" || a.dtype == "float32" || a.dtype == "float")
    return weight_precision::bf16;
  throw model_error("--dtype '" + a.dtype + "' is not one of auto, float32, float16, bfloat16");
}

nlohmann::json to_json(const estimate_config& c, const memory_estimate& e, weight_precision selected) {
  const auto& m = c.model;
  const auto& o = e.options;
  nlohmann::json j;
  j["model"] = {{"architecture", m.architecture},
                {"num_hidden_layers", m.num_hidden_layers},
                {"hidden_size", m.hidden_size},
                {"num_attention_heads", m.num_attention_heads},
                {"num_key_value_heads", m.num_key_value_heads},
                {"head_dim", m.head_dim},
                {"intermediate_size", m.intermediate_size},
                {"vocab_size", m.vocab_size},
                {"parameters", e.params.total()},
                {"linear_parameters", e.params.linear}};
  j["options"] = {{"max_model_len", o.max_model_len},
                  {"concurrency", o.concurrency},
                  {"max_num_seqs", o.max_num_seqs},
                  {"max_num_batched_tokens", o.max_num_batched_tokens},
                  {"block_size", o.block_size},
                  {"tensor_parallel_size", o.tensor_parallel_size},
                  {"gpu_memory_utilization", o.gpu_memory_utilization},
                  {"int4_group_size", o.int4_group_size}};
  j["selected"] = precision_name(selected);
  j["precisions"] = nlohmann::json::array();
  for (const auto& p : e.precisions) {
    nlohmann::json row = {{"precision", precision_name(p.precision)},
                          {"weight_bytes", p.weight_bytes},
                          {"activation_bytes", p.activation_bytes},
                          {"cuda_graph_bytes", p.cuda_graph_bytes},
                          {"runtime_bytes", p.runtime_bytes},
                          {"kv_bytes_per_token", p.kv_bytes_per_token},
                          {"kv_bytes_per_sequence", p.kv_bytes_per_sequence},
                          {"kv_bytes", p.kv_bytes},
                          {"total_bytes", p.total_bytes},
                          {"gpus", nlohmann::json::array()}};
    for (const auto& f : p.gpus)
      row["gpus"].push_back({{"gpu", f.gpu->name},
                             {"memory_bytes", f.gpu->memory_bytes},
                             {"budget_bytes", f.budget_bytes},
                             {"kv_budget_bytes", f.kv_budget_bytes},
                             {"num_kv_blocks", f.num_kv_blocks},
                             {"max_sequences", f.max_sequences},
                             {"fits", f.fits},
                             {"note", f.note}});
    j["precisions"].push_back(std::move(row));
  }
  return j;
}

void print_text(const estimate_config& c, const memory_estimate& e, weight_precision selected) {
  const auto& m = c.model;
  const auto& o = e.options;
  std::ostringstream out;
  char params[64];
  std::snprintf(params, sizeof params, "%.2f B parameters (%.2f B in linear layers)",
                static_cast<double>(e.params.total()) / 1e9, static_cast<double>(e.params.linear) / 1e9);
  out << "model: " << m.architecture << ", " << params << "\n"
      << "shape: " << m.num_hidden_layers << " layers, hidden " << m.hidden_size << ", " << m.num_attention_heads
      << " heads, " << m.num_key_value_heads << " KV heads, head_dim " << m.head_dim << ", intermediate "
      << m.intermediate_size << ", vocab " << m.vocab_size << "\n"
      << "serving: " << o.concurrency << " x " << o.max_model_len << " tokens, tensor parallel "
      << o.tensor_parallel_size << ", gpu-memory-utilization " << o.gpu_memory_utilization << ", block size "
      << o.block_size << ", max-num-batched-tokens " << o.max_num_batched_tokens << ", max-num-seqs "
      << o.max_num_seqs << "\n\n";

  out << "GiB per GPU  weights  activations  cuda graphs  runtime  KV/token  KV(" << o.concurrency << "x"
      << o.max_model_len << ")  total\n";
  for (const auto& p : e.precisions) {
    out << pad(std::string(precision_name(p.precision)) + (p.precision == selected ? " *" : ""), 13)
        << pad(gib(p.weight_bytes), 9) << pad(gib(p.activation_bytes), 13) << pad(gib(p.cuda_graph_bytes), 13)
        << pad(gib(p.runtime_bytes), 9) << pad(std::to_string(p.kv_bytes_per_token / 1024) + " KiB", 10)
        << pad(gib(p.kv_bytes), 6 + std::to_string(o.concurrency).size() + std::to_string(o.max_model_len).size())
        << gib(p.total_bytes) << "\n";
  }
  out << "\nsequences of " << o.max_model_len << " tokens each GPU holds at " << o.gpu_memory_utilization
      << " (ok: holds " << o.concurrency << "; -: weights and overhead do not fit; x: unsupported)\n";
  out << pad("", 13);
  for (const auto& g : common_gpus())
    out << pad(g.name, 12);
  out << "\n";
  for (const auto& p : e.precisions) {
    out << pad(std::string(precision_name(p.precision)) + (p.precision == selected ? " *" : ""), 13);
    for (const auto& f : p.gpus) {
      std::string cell;
      if (f.kv_budget_bytes <= 0)
        cell = "-";
      else if (!f.fits && f.note.find("compute capability") != std::string::npos)
        cell = "x";
      else
        cell = std::to_string(f.max_sequences) + (f.fits ? " ok" : "");
      out << pad(cell, 12);
    }
    out << "\n";
  }
  for (const auto& p : e.precisions) {
    if (p.precision != selected)
      continue;
    std::string fitting;
    for (const auto& f : p.gpus)
      if (f.fits)
        fitting += (fitting.empty() ? "" : ", ") + f.gpu->name;
    out << "\n" << precision_name(selected) << ": " << (fitting.empty() ? "fits none of these GPUs" : "fits " + fitting)
        << "\n";
    for (const auto& f : p.gpus)
      if (!f.note.empty())
        out << "  " << f.gpu->name << ": " << f.note << "\n";
  }
  std::cout << out.str();
}

int run_estimate(const estimate_args& a) {
  if (a.model_dir.empty() == a.config_file.empty())
    throw model_error("give exactly one of --model DIR and --config FILE");
  auto config = load_estimate_config(a.model_dir.empty() ? a.config_file : a.model_dir);
  auto options = a.options;
  options.activation_dtype = choose_activation(a, config);
  const auto selected = choose_precision(a, config, options.activation_dtype);
  if (selected == weight_precision::int4 && config.checkpoint_group_size > 0 && options.int4_group_size == 128)
    options.int4_group_size = config.checkpoint_group_size;
  auto estimate = estimate_memory(config.model, options);
  if (a.json)
    std::cout << to_json(config, estimate, selected).dump(2) << "\n";
  else
    print_text(config, estimate, selected);
  return 0;
}

command_registrar estimate_command{
    "estimate", "GPU memory needed to serve a model: weights, KV cache, activations, per precision and GPU",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<estimate_args>();
      app.add_option("--model", a->model_dir, "model folder with a config.json");
      app.add_option("--config", a->config_file, "a config.json file");
      app.add_option("--dtype", a->dtype, "auto, float32, float16 or bfloat16")->capture_default_str();
      app.add_option("--quantization", a->quantization, "none, fp8, int8, int4, awq or gptq");
      app.add_option("--max-model-len", a->options.max_model_len, "context length (default: the model's)");
      app.add_option("--concurrency", a->options.concurrency, "sequences of max-model-len at once")
          ->capture_default_str();
      app.add_option("--max-num-seqs", a->options.max_num_seqs, "sequences per step")->capture_default_str();
      app.add_option("--max-num-batched-tokens", a->options.max_num_batched_tokens, "tokens per step")
          ->capture_default_str();
      app.add_option("--block-size", a->options.block_size, "KV cache block size in tokens")->capture_default_str();
      app.add_option("--tensor-parallel-size", a->options.tensor_parallel_size, "GPUs per replica")
          ->capture_default_str();
      app.add_option("--gpu-memory-utilization", a->options.gpu_memory_utilization,
                     "fraction of GPU memory the server may use")
          ->capture_default_str();
      app.add_option("--group-size", a->options.int4_group_size, "int4 quantization group size")
          ->capture_default_str();
      app.add_flag("--json", a->json, "print one JSON object instead of tables");
      return [a] { return run_estimate(*a); };
    }};

} // namespace
} // namespace actorserve::cli
