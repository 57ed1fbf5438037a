#include "model/config.hpp"

#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <sstream>

namespace actorserve {

namespace {

using json = nlohmann::json;

std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60)
    text = text.substr(0, 57) + "...";
  return std::string(v.type_name()) + " " + text;
}

/// Reads typed fields of one JSON object, throwing model_error "SOURCE: field 'NAME' ..." so
/// that every refusal names the file and the field. `prefix` names the enclosing object for
/// nested fields ("rope_scaling.").
class field_reader {
public:
  field_reader(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(std::string_view field, const std::string& what) const {
    throw model_error(source_ + ": field '" + prefix_ + std::string(field) + "' " + what);
  }

  /// The value of `field`, or nullptr when absent or null (HF treats both as "use the default").
  const json* find(std::string_view field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null())
      return nullptr;
    return &*it;
  }

  bool present(std::string_view field) const { return find(field) != nullptr; }

  std::optional<int64_t> optional_int(std::string_view field) const {
    const json* v = find(field);
    if (!v)
      return std::nullopt;
    if (v->is_number_unsigned()) {
      if (v->get<uint64_t>() > uint64_t(INT64_MAX))
        fail(field, "is too large: " + v->dump());
      return int64_t(v->get<uint64_t>());
    }
    if (!v->is_number_integer())
      fail(field, "must be an integer, got " + describe(*v));
    return v->get<int64_t>();
  }

  int64_t required_int(std::string_view field) const {
    auto v = optional_int(field);
    if (!v)
      fail(field, "is missing (required)");
    return *v;
  }

  int64_t positive_int(std::string_view field, std::optional<int64_t> fallback = std::nullopt) const {
    auto v = optional_int(field);
    if (!v && !fallback)
      fail(field, "is missing (required)");
    int64_t value = v ? *v : *fallback;
    if (value <= 0)
      fail(field, "must be positive, got " + std::to_string(value));
    return value;
  }

  double number(std::string_view field, double fallback) const {
    const json* v = find(field);
    if (!v)
      return fallback;
    if (!v->is_number())
      fail(field, "must be a number, got " + describe(*v));
    return v->get<double>();
  }

  double positive_number(std::string_view field, std::optional<double> fallback = std::nullopt) const {
    const json* v = find(field);
    if (!v && !fallback)
      fail(field, "is missing (required)");
    double value = v ? number(field, 0.0) : *fallback;
    if (!(value > 0.0))
      fail(field, "must be positive, got " + std::to_string(value));
    return value;
  }

  bool boolean(std::string_view field, bool fallback) const {
    const json* v = find(field);
    if (!v)
      return fallback;
    if (!v->is_boolean())
      fail(field, "must be true or false, got " + describe(*v));
    return v->get<bool>();
  }

  std::string string(std::string_view field, std::string fallback) const {
    const json* v = find(field);
    if (!v)
      return fallback;
    if (!v->is_string())
      fail(field, "must be a string, got " + describe(*v));
    return v->get<std::string>();
  }

  /// bos_token_id / eos_token_id: absent, an int, or a list of ints.
  std::vector<int64_t> token_ids(std::string_view field) const {
    const json* v = find(field);
    std::vector<int64_t> ids;
    if (!v)
      return ids;
    auto take = [&](const json& id) {
      if (!id.is_number_integer())
        fail(field, "must be an integer or a list of integers, got " + describe(*v));
      if (id.get<int64_t>() < 0)
        fail(field, "must not be negative, got " + id.dump());
      ids.push_back(id.get<int64_t>());
    };
    if (v->is_array()) {
      for (const auto& id : *v)
        take(id);
    } else {
      take(*v);
    }
    return ids;
  }

private:
  const json& object_;
  std::string source_;
  std::string prefix_;
};

struct arch_info {
  model_arch arch;
  std::string_view class_name;
  std::string_view model_type;
  int64_t default_max_position;
};

// Defaults follow the Hugging Face config classes, so a config.json that leaves a field out
// means the same thing here as in transformers.
constexpr arch_info known_archs[] = {
    {model_arch::llama, "LlamaForCausalLM", "llama", 2048},
    {model_arch::qwen2, "Qwen2ForCausalLM", "qwen2", 32768},
    {model_arch::qwen3, "Qwen3ForCausalLM", "qwen3", 32768},
    {model_arch::mistral, "MistralForCausalLM", "mistral", 131072},
};

const arch_info& info_of(model_arch a) {
  for (const auto& info : known_archs)
    if (info.arch == a)
      return info;
  throw model_error("unknown model_arch value");
}

std::string supported_class_names() {
  std::string names;
  for (const auto& info : known_archs)
    names += (names.empty() ? "" : ", ") + std::string(info.class_name);
  return names;
}

const arch_info& read_arch(const json& root, const field_reader& r) {
  if (const json* archs = r.find("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string())
      r.fail("architectures", "must be a non-empty list of class names, got " + describe(*archs));
    auto name = (*archs)[0].get<std::string>();
    for (const auto& info : known_archs)
      if (info.class_name == name)
        return info;
    r.fail("architectures", "names the unsupported architecture '" + name + "' (supported: " +
                                supported_class_names() + ")");
  }
  // Without `architectures`, transformers picks the class from `model_type`.
  if (!r.present("model_type"))
    r.fail("architectures", "is missing (required, e.g. [\"LlamaForCausalLM\"])");
  auto type = r.string("model_type", "");
  for (const auto& info : known_archs)
    if (info.model_type == type)
      return info;
  r.fail("model_type", "names the unsupported model type '" + type + "' (supported: " +
                           supported_class_names() + ")");
}

/// rope_scaling (transformers 4) or rope_parameters (transformers 5, which also holds
/// rope_theta). "type" is the older spelling of "rope_type".
rope_scaling_config read_rope_scaling(const json& scaling, const std::string& source,
                                      const std::string& field) {
  rope_scaling_config out;
  field_reader r(scaling, source, field + ".");
  std::string type_key = r.present("rope_type") ? "rope_type" : "type";
  std::string type = r.string(type_key, "default");
  if (type == "default")
    return out;
  if (type == "linear") {
    out.type = rope_scaling_type::linear;
    out.factor = r.positive_number("factor");
    return out;
  }
  if (type == "llama3") {
    out.type = rope_scaling_type::llama3;
    out.factor = r.positive_number("factor");
    out.low_freq_factor = r.positive_number("low_freq_factor");
    out.high_freq_factor = r.positive_number("high_freq_factor");
    out.original_max_position_embeddings = r.positive_int("original_max_position_embeddings");
    if (out.high_freq_factor <= out.low_freq_factor)
      r.fail("high_freq_factor", "must be greater than low_freq_factor");
    return out;
  }
  r.fail(type_key, "is '" + type + "': only the 'default', 'linear' and 'llama3' RoPE scalings are supported");
}

void refuse_sliding_window(const model_config& c, const field_reader& r) {
  if (c.arch == model_arch::qwen2 || c.arch == model_arch::qwen3) {
    // The window only applies when use_sliding_window is true.
    if (r.boolean("use_sliding_window", false))
      r.fail("use_sliding_window", "is true: sliding-window attention is not supported (results would change)");
  }
  if (c.arch == model_arch::mistral) {
    if (auto window = r.optional_int("sliding_window"); window && *window < c.max_position_embeddings)
      r.fail("sliding_window", "is " + std::to_string(*window) + ", less than max_position_embeddings " +
                                   std::to_string(c.max_position_embeddings) +
                                   ": sliding-window attention is not supported (results would change)");
  }
  if (const json* types = r.find("layer_types")) {
    if (!types->is_array())
      r.fail("layer_types", "must be a list, got " + describe(*types));
    for (const auto& t : *types)
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        r.fail("layer_types", "contains " + t.dump() + ": only full_attention layers are supported");
  }
}

model_config parse(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw model_error(source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object())
    throw model_error(source + ": must be a JSON object, got " + describe(root));
  field_reader r(root, source);

  const arch_info& arch = read_arch(root, r);
  model_config c;
  c.arch = arch.arch;
  c.architecture = std::string(arch.class_name);

  if (r.present("quantization_config")) {
    std::string method;
    if (const json* q = r.find("quantization_config"); q->is_object() && q->contains("quant_method"))
      method = " ('" + (*q)["quant_method"].dump() + "')";
    r.fail("quantization_config", "is present" + method + ": quantized checkpoints are not supported yet");
  }
  auto act = r.string("hidden_act", "silu");
  if (act != "silu" && act != "swish")
    r.fail("hidden_act", "is '" + act + "': only silu is supported");

  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_hidden_layers = r.positive_int("num_hidden_layers");
  c.num_attention_heads = r.positive_int("num_attention_heads");
  c.num_key_value_heads = r.positive_int("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + ")");
  if (r.present("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else if (c.arch == model_arch::qwen3) {
    c.head_dim = 128; // Qwen3Config's default
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      r.fail("head_dim", "is missing and hidden_size (" + std::to_string(c.hidden_size) +
                             ") is not a multiple of num_attention_heads (" +
                             std::to_string(c.num_attention_heads) + ")");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.vocab_size = r.positive_int("vocab_size");
  c.max_position_embeddings = r.positive_int("max_position_embeddings", arch.default_max_position);
  c.rms_norm_eps = r.positive_number("rms_norm_eps", 1e-6);

  c.rope_theta = r.positive_number("rope_theta", 10000.0);
  if (const json* scaling = r.find("rope_scaling")) {
    if (!scaling->is_object())
      r.fail("rope_scaling", "must be an object or null, got " + describe(*scaling));
    c.rope_scaling = read_rope_scaling(*scaling, source, "rope_scaling");
  }
  if (const json* params = r.find("rope_parameters")) {
    if (!params->is_object())
      r.fail("rope_parameters", "must be an object, got " + describe(*params));
    field_reader p(*params, source, "rope_parameters.");
    c.rope_theta = p.positive_number("rope_theta", c.rope_theta);
    c.rope_scaling = read_rope_scaling(*params, source, "rope_parameters");
  }

  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  if (c.arch == model_arch::qwen2) {
    c.attention_bias = true; // Qwen2Attention always has q/k/v biases (and none on o_proj)
  } else if (r.boolean("attention_bias", false)) {
    // Llama and Qwen3 put the bias on o_proj as well, which our backends do not carry.
    r.fail("attention_bias", "is true: a bias on o_proj (" + c.architecture + ") is not supported");
  }
  if (r.boolean("mlp_bias", false))
    r.fail("mlp_bias", "is true: MLP biases are not supported");
  c.qk_norm = c.arch == model_arch::qwen3;
  refuse_sliding_window(c, r);

  c.torch_dtype = r.string(r.present("dtype") ? "dtype" : "torch_dtype", "");
  c.bos_token_ids = r.token_ids("bos_token_id");
  c.eos_token_ids = r.token_ids("eos_token_id");
  return c;
}

json token_ids_json(const std::vector<int64_t>& ids) {
  if (ids.empty())
    return nullptr;
  if (ids.size() == 1)
    return ids[0];
  return ids;
}

} // namespace

std::string_view arch_name(model_arch a) { return info_of(a).model_type; }

model_config parse_model_config(const std::string& json_text) { return parse(json_text, "config.json"); }

model_config load_model_config(const std::filesystem::path& model_dir) {
  auto path = model_dir / "config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw model_error(path.string() + ": cannot be opened (is " + model_dir.string() + " a model folder?)");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path.string());
}

std::string model_config_to_json(const model_config& c) {
  const arch_info& arch = info_of(c.arch);
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture.empty() ? std::string(arch.class_name) : c.architecture};
  j["model_type"] = arch.model_type;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  switch (c.rope_scaling.type) {
    case rope_scaling_type::none:
      j["rope_scaling"] = nullptr;
      break;
    case rope_scaling_type::linear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
      break;
    case rope_scaling_type::llama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
      break;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.arch == model_arch::llama || c.arch == model_arch::qwen3)
    j["attention_bias"] = false;
  if (c.arch == model_arch::llama)
    j["mlp_bias"] = false;
  if (c.arch == model_arch::qwen2 || c.arch == model_arch::qwen3)
    j["use_sliding_window"] = false;
  if (c.arch != model_arch::llama)
    j["sliding_window"] = nullptr;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["torch_dtype"] = c.torch_dtype.empty() ? "bfloat16" : c.torch_dtype;
  j["bos_token_id"] = token_ids_json(c.bos_token_ids);
  j["eos_token_id"] = token_ids_json(c.eos_token_ids);
  return j.dump(2) + "\n";
}

} // namespace actorserve
