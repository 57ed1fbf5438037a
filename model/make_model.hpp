#pragma once
// Random-weight models in the Hugging Face layout (config.json, generation_config.json,
// safetensors, tokenizer files), deterministic from a seed, for tests and benchmarks with real
// shapes. `actorserve make-model` is the command-line front end.

#include "model/config.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

namespace actorserve {

struct make_model_options {
  /// Architecture and shapes. vocab_size 0: sized to the tokenizer. bos/eos ids are taken
  /// from the tokenizer.
  model_config config;
  /// When true, a vocab_size smaller than the tokenizer is replaced by the tokenizer's size
  /// instead of refused (a preset's vocabulary, not one the user asked for).
  bool vocab_from_preset = false;
  dtype weight_type = dtype::bf16;
  uint64_t seed = 0;
  /// A folder with tokenizer.json (and tokenizer_config.json, special_tokens_map.json) to copy;
  /// empty: write the byte-level tokenizer (model/byte_tokenizer.hpp).
  std::filesystem::path tokenizer_dir;
  uint64_t shard_size_bytes = uint64_t{4096} << 20;
  int num_threads = 2;
  bool show_progress = false; // on stderr
};

struct make_model_result {
  model_config config;                     // as written to config.json
  std::vector<std::filesystem::path> files; // the safetensors files written
  uint64_t num_parameters = 0;
  uint64_t weight_bytes = 0;
};

/// Writes the model into `out_dir` (created if needed; weight files of an earlier model there
/// are replaced). Throws model_error for an invalid configuration or tokenizer folder.
make_model_result make_model(const std::filesystem::path& out_dir, make_model_options options);

/// The shapes of a preset: "tiny", "llama3-8b", "qwen2.5-7b". The tiny preset has vocab_size 0
/// (sized to the tokenizer). Throws model_error for an unknown name.
model_config model_preset(std::string_view name);

/// Every weight of a model with its Hugging Face name and shape ([out_features, in_features]
/// for projections), in the order of the PyTorch state dict.
std::vector<tensor_spec> model_tensor_specs(const model_config& c, dtype weight_type);

/// Element `index` (row-major) of tensor `name` as make-model generates it (before rounding to
/// the stored dtype). See make_model.cpp for the distribution.
float make_model_value(uint64_t seed, const tensor_spec& spec, int64_t index);

/// What a tokenizer folder means for a model: its size (max id + 1 over the model vocabulary
/// and the added tokens) and its bos/eos ids.
struct tokenizer_summary {
  int64_t size = 0;
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
};
tokenizer_summary summarize_tokenizer(const std::filesystem::path& tokenizer_dir);

} // namespace actorserve
