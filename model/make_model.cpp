// make-model: random-weight Hugging Face models, byte-identical for the same seed and options.
//
// The values (a Python script on the GPU machine loads the files, it does not regenerate them;
// the C++ tests regenerate them from the seed):
//   key(tensor)  = mix64(seed ^ mix64(fnv1a64(tensor name)))
//   r(i)         = mix64(key + (i + 1) * 0x9e3779b97f4a7c15)   (splitmix64's i-th output)
//   z(i)         = (sum of the four 16-bit fields of r(i) - 131070) / 37837.23
// z is an Irwin-Hall approximation of N(0, 1): mean 0, variance 1, bounded at +-3.46.
//   projection and embedding matrices [out, in]: std(1/sqrt(in)) * z      (mean 0)
//   RMSNorm weights (layernorms, model.norm, q_norm, k_norm): 1 + 0.1 * z
//   biases (q/k/v of Qwen2): 0.1 * z
// 1/sqrt(in) is about 0.02 at 8B shapes (hidden 4096) and keeps activations and logits of
// order one at tiny shapes, so that attention and greedy decoding are not degenerate. The
// element i of a tensor depends only on (seed, name, i): tensors and chunks are generated
// independently, by any number of threads, with the same result.
#include "model/make_model.hpp"

#include "model/byte_tokenizer.hpp"
#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace actorserve {

namespace {

using json = nlohmann::json;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= uint8_t(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// value(i) = mean + scale * (sum16(r(i)) - 131070).
struct value_stream {
  uint64_t key = 0;
  float mean = 0.0f;
  float scale = 0.0f;

  value_stream(uint64_t seed, const tensor_spec& spec) {
    key = mix64(seed ^ mix64(fnv1a64(spec.name)));
    double std_dev;
    if (ends_with(spec.name, "norm.weight")) {
      mean = 1.0f;
      std_dev = 0.1;
    } else if (ends_with(spec.name, ".bias")) {
      std_dev = 0.1;
    } else {
      int64_t in_features = spec.shape.size() == 2 ? spec.shape[1] : 1;
      std_dev = 1.0 / std::sqrt(double(std::max<int64_t>(in_features, 1)));
    }
    // sqrt(4 * (65536^2 - 1) / 12): the std of a sum of four uniform 16-bit integers.
    scale = float(std_dev / 37837.22659488838);
  }

  static int32_t centred_sum(uint64_t r) {
    return int32_t((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) - 131070;
  }

  void fill(int64_t first, int64_t count, float* out) const {
    uint64_t counter = key + (uint64_t(first) + 1) * 0x9e3779b97f4a7c15ull;
    if (mean == 0.0f) {
      // One rounding per value: no compiler flag (FMA contraction) can change the bytes.
      for (int64_t i = 0; i < count; ++i, counter += 0x9e3779b97f4a7c15ull)
        out[i] = float(centred_sum(mix64(counter))) * scale;
    } else {
      // Norm weights are small; `volatile` keeps the multiply and the add two roundings.
      for (int64_t i = 0; i < count; ++i, counter += 0x9e3779b97f4a7c15ull) {
        volatile float product = float(centred_sum(mix64(counter))) * scale;
        out[i] = mean + product;
      }
    }
  }
};

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw model_error(path.string() + ": cannot be opened");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    throw model_error(path.string() + ": not valid JSON: " + e.what());
  }
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush())
    throw model_error(path.string() + ": cannot be written");
}

/// bos_token_id / eos_token_id of a config.json or generation_config.json: int or list.
std::optional<std::vector<int64_t>> ids_field(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null())
    return std::nullopt;
  std::vector<int64_t> ids;
  for (const auto& v : it->is_array() ? *it : json::array({*it}))
    if (v.is_number_integer() && v.get<int64_t>() >= 0)
      ids.push_back(v.get<int64_t>());
  return ids;
}

/// The text of a special token in tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> token_text(const json& config, const char* field) {
  auto it = config.find(field);
  if (it == config.end())
    return std::nullopt;
  if (it->is_string())
    return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

void remove_earlier_weights(const std::filesystem::path& dir) {
  static const std::regex shard_name(R"(model-\d+-of-\d+\.safetensors(\.partial)?)");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (name == "model.safetensors" || name == "model.safetensors.index.json" ||
        name == "model.safetensors.partial" || std::regex_match(name, shard_name))
      std::filesystem::remove(entry.path());
  }
}

/// Prints "make-model: 1.20 / 16.06 GB (7%), 290 MB/s" at most once a second.
class progress_printer {
public:
  explicit progress_printer(uint64_t total_bytes) : total_(total_bytes) {}

  void update(uint64_t done_bytes, bool force = false) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::seconds(1))
      return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "make-model: %.2f / %.2f GB (%d%%), %.0f MB/s\n", double(done_bytes) / 1e9,
                 double(total_) / 1e9, total_ ? int(100 * done_bytes / total_) : 100,
                 seconds > 0 ? double(done_bytes) / 1e6 / seconds : 0.0);
  }

private:
  uint64_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

} // namespace

float make_model_value(uint64_t seed, const tensor_spec& spec, int64_t index) {
  float v;
  value_stream(seed, spec).fill(index, 1, &v);
  return v;
}

model_config model_preset(std::string_view name) {
  model_config c;
  c.rms_norm_eps = 1e-5;
  if (name == "tiny") {
    c.arch = model_arch::llama;
    c.hidden_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.intermediate_size = 128;
    c.vocab_size = 0;
    c.max_position_embeddings = 2048;
  } else if (name == "llama3-8b") {
    c.arch = model_arch::llama;
    c.hidden_size = 4096;
    c.num_hidden_layers = 32;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.intermediate_size = 14336;
    c.vocab_size = 128256;
    c.max_position_embeddings = 131072;
    c.rope_theta = 500000.0;
    c.rope_scaling = {rope_scaling_type::llama3, 8.0, 1.0, 4.0, 8192};
  } else if (name == "qwen2.5-7b") {
    c.arch = model_arch::qwen2;
    c.hidden_size = 3584;
    c.num_hidden_layers = 28;
    c.num_attention_heads = 28;
    c.num_key_value_heads = 4;
    c.intermediate_size = 18944;
    c.vocab_size = 152064;
    c.max_position_embeddings = 32768;
    c.rope_theta = 1e6;
    c.rms_norm_eps = 1e-6;
    c.attention_bias = true;
  } else {
    throw model_error("unknown preset '" + std::string(name) + "' (known: tiny, llama3-8b, qwen2.5-7b)");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return c;
}

std::vector<tensor_spec> model_tensor_specs(const model_config& c, dtype t) {
  const int64_t h = c.hidden_size;
  std::vector<tensor_spec> specs;
  specs.push_back({"model.embed_tokens.weight", t, {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i) + ".";
    specs.push_back({layer + "input_layernorm.weight", t, {h}});
    specs.push_back({layer + "self_attn.q_proj.weight", t, {c.q_size(), h}});
    specs.push_back({layer + "self_attn.k_proj.weight", t, {c.kv_size(), h}});
    specs.push_back({layer + "self_attn.v_proj.weight", t, {c.kv_size(), h}});
    if (c.attention_bias) {
      specs.push_back({layer + "self_attn.q_proj.bias", t, {c.q_size()}});
      specs.push_back({layer + "self_attn.k_proj.bias", t, {c.kv_size()}});
      specs.push_back({layer + "self_attn.v_proj.bias", t, {c.kv_size()}});
    }
    specs.push_back({layer + "self_attn.o_proj.weight", t, {h, c.q_size()}});
    if (c.qk_norm) {
      specs.push_back({layer + "self_attn.q_norm.weight", t, {c.head_dim}});
      specs.push_back({layer + "self_attn.k_norm.weight", t, {c.head_dim}});
    }
    specs.push_back({layer + "post_attention_layernorm.weight", t, {h}});
    specs.push_back({layer + "mlp.gate_proj.weight", t, {c.intermediate_size, h}});
    specs.push_back({layer + "mlp.up_proj.weight", t, {c.intermediate_size, h}});
    specs.push_back({layer + "mlp.down_proj.weight", t, {h, c.intermediate_size}});
  }
  specs.push_back({"model.norm.weight", t, {h}});
  if (!c.tie_word_embeddings)
    specs.push_back({"lm_head.weight", t, {c.vocab_size, h}});
  return specs;
}

tokenizer_summary summarize_tokenizer(const std::filesystem::path& dir) {
  const auto tokenizer_path = dir / "tokenizer.json";
  if (!std::filesystem::exists(tokenizer_path))
    throw model_error(dir.string() + ": no tokenizer.json (--tokenizer needs a Hugging Face tokenizer folder)");
  const json tokenizer = read_json_file(tokenizer_path);
  const json* vocab = tokenizer.contains("model") && tokenizer["model"].is_object() && tokenizer["model"].contains("vocab")
                          ? &tokenizer["model"]["vocab"]
                          : nullptr;
  if (!vocab || !(vocab->is_object() || vocab->is_array()))
    throw model_error(tokenizer_path.string() + ": 'model.vocab' is missing");

  tokenizer_summary out;
  std::map<std::string, int64_t> added_ids;
  auto see = [&](const json& id) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      throw model_error(tokenizer_path.string() + ": token id " + id.dump() + " is not a non-negative integer");
    out.size = std::max(out.size, id.get<int64_t>() + 1);
  };
  if (vocab->is_array()) { // Unigram: [[piece, score], ...], ids are positions
    out.size = int64_t(vocab->size());
  } else {
    for (const auto& [piece, id] : vocab->items())
      see(id);
  }
  if (tokenizer.contains("added_tokens") && tokenizer["added_tokens"].is_array()) {
    for (const auto& token : tokenizer["added_tokens"]) {
      if (!token.is_object() || !token.contains("id") || !token.contains("content"))
        throw model_error(tokenizer_path.string() + ": an added_tokens entry lacks id or content");
      see(token["id"]);
      if (token["content"].is_string())
        added_ids[token["content"].get<std::string>()] = token["id"].get<int64_t>();
    }
  }
  if (out.size == 0)
    throw model_error(tokenizer_path.string() + ": the vocabulary is empty");

  // The ids a model of this tokenizer stops on: generation_config.json and config.json know
  // about end-of-turn tokens (Llama 3's eos list); tokenizer_config.json names one of each.
  bool found_bos = false, found_eos = false;
  for (const char* file : {"generation_config.json", "config.json"}) {
    if (!std::filesystem::exists(dir / file))
      continue;
    const json j = read_json_file(dir / file);
    if (auto bos = ids_field(j, "bos_token_id"); bos && !found_bos) {
      out.bos_token_ids = *bos;
      found_bos = true;
    }
    if (auto eos = ids_field(j, "eos_token_id"); eos && !found_eos) {
      out.eos_token_ids = *eos;
      found_eos = true;
    }
  }
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    const json config = read_json_file(dir / "tokenizer_config.json");
    auto id_of = [&](const std::string& text) -> std::optional<int64_t> {
      if (auto it = added_ids.find(text); it != added_ids.end())
        return it->second;
      if (vocab->is_object() && vocab->contains(text) && (*vocab)[text].is_number_integer())
        return (*vocab)[text].get<int64_t>();
      return std::nullopt;
    };
    if (auto text = token_text(config, "bos_token"); text && !found_bos)
      if (auto id = id_of(*text))
        out.bos_token_ids = {*id};
    if (auto text = token_text(config, "eos_token"); text && !found_eos)
      if (auto id = id_of(*text))
        out.eos_token_ids = {*id};
  }
  for (const auto* ids : {&out.bos_token_ids, &out.eos_token_ids})
    for (int64_t id : *ids)
      if (id >= out.size)
        throw model_error(dir.string() + ": bos/eos token id " + std::to_string(id) + " is outside the tokenizer (" +
                          std::to_string(out.size) + " tokens)");
  return out;
}

make_model_result make_model(const std::filesystem::path& out_dir, make_model_options options) {
  model_config c = options.config;
  if (options.weight_type != dtype::bf16 && options.weight_type != dtype::f16 && options.weight_type != dtype::f32)
    throw model_error("make-model writes bf16, f16 or f32 weights, not " + std::string(dtype_name(options.weight_type)));
  if (c.num_key_value_heads == 0)
    c.num_key_value_heads = c.num_attention_heads;
  if (c.head_dim == 0 && c.num_attention_heads > 0)
    c.head_dim = c.hidden_size / c.num_attention_heads;
  c.architecture.clear();
  c.torch_dtype = options.weight_type == dtype::bf16 ? "bfloat16" : options.weight_type == dtype::f16 ? "float16" : "float32";

  // The tokenizer decides the vocabulary's minimum size and the bos/eos ids.
  tokenizer_summary tokens;
  int64_t fitted_vocab;
  if (options.tokenizer_dir.empty()) {
    tokens.size = byte_tokenizer_size;
    tokens.bos_token_ids = {byte_tokenizer_bos_id};
    tokens.eos_token_ids = {byte_tokenizer_eos_id, byte_tokenizer_end_of_turn_id};
    fitted_vocab = (byte_tokenizer_size + 63) / 64 * 64; // GPU-friendly row count
  } else {
    tokens = summarize_tokenizer(options.tokenizer_dir);
    fitted_vocab = tokens.size;
  }
  if (c.vocab_size == 0 || (c.vocab_size < tokens.size && options.vocab_from_preset))
    c.vocab_size = fitted_vocab;
  if (c.vocab_size < tokens.size)
    throw model_error("vocabulary of " + std::to_string(c.vocab_size) + " rows is smaller than the tokenizer (" +
                      std::to_string(tokens.size) + " tokens)");
  c.bos_token_ids = tokens.bos_token_ids;
  c.eos_token_ids = tokens.eos_token_ids;

  // Validate through the parser: what we write must be what a reader accepts.
  const std::string config_text = model_config_to_json(c);
  c = parse_model_config(config_text);

  std::filesystem::create_directories(out_dir);
  remove_earlier_weights(out_dir);
  write_text_file(out_dir / "config.json", config_text);
  json generation = {{"_from_model_config", true}};
  generation["bos_token_id"] = c.bos_token_ids.size() == 1 ? json(c.bos_token_ids[0]) : json(c.bos_token_ids);
  generation["eos_token_id"] = c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  write_text_file(out_dir / "generation_config.json", generation.dump(2) + "\n");

  if (options.tokenizer_dir.empty()) {
    write_text_file(out_dir / "tokenizer.json", byte_tokenizer_json());
    write_text_file(out_dir / "tokenizer_config.json", byte_tokenizer_config_json(c.max_position_embeddings));
    std::filesystem::remove(out_dir / "special_tokens_map.json");
  } else {
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      auto from = options.tokenizer_dir / file, to = out_dir / file;
      if (!std::filesystem::exists(from))
        continue;
      if (std::filesystem::exists(to) && std::filesystem::equivalent(from, to))
        continue;
      std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    }
  }

  // Shards as transformers cuts them: in state-dict order, a new shard when the next tensor
  // would overflow the current one (a tensor larger than the limit gets a shard of its own).
  const std::vector<tensor_spec> specs = model_tensor_specs(c, options.weight_type);
  make_model_result result;
  std::vector<std::vector<tensor_spec>> shards(1);
  uint64_t shard_bytes = 0;
  for (const auto& spec : specs) {
    uint64_t nbytes = uint64_t(spec.numel()) * dtype_size(spec.type);
    if (!shards.back().empty() && shard_bytes + nbytes > options.shard_size_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(spec);
    shard_bytes += nbytes;
    result.num_parameters += uint64_t(spec.numel());
    result.weight_bytes += nbytes;
  }

  progress_printer printer(result.weight_bytes);
  uint64_t bytes_before = 0;
  safetensors_write_options write_options;
  write_options.num_threads = std::max(1, options.num_threads);
  if (options.show_progress)
    write_options.progress = [&](uint64_t done, uint64_t) { printer.update(bytes_before + done); };
  json weight_map = json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    if (shards.size() == 1)
      std::snprintf(name, sizeof name, "model.safetensors");
    else
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const auto path = out_dir / name;
    write_safetensors_chunked(
        path, shards[s],
        [seed = options.seed](const tensor_spec& spec, int64_t first, int64_t count, float* out) {
          value_stream(seed, spec).fill(first, count, out);
        },
        write_options);
    for (const auto& spec : shards[s]) {
      weight_map[spec.name] = name;
      bytes_before += uint64_t(spec.numel()) * dtype_size(spec.type);
    }
    result.files.push_back(path);
  }
  if (shards.size() > 1) {
    json index = {{"metadata", {{"total_size", result.weight_bytes}}}, {"weight_map", weight_map}};
    write_text_file(out_dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  if (options.show_progress)
    printer.update(result.weight_bytes, true);
  result.config = c;
  return result;
}

} // namespace actorserve
