#include "model/byte_tokenizer.hpp"
#include "model/config.hpp"
#include "model/error.hpp"
#include "model/make_model.hpp"
#include "model/safetensors.hpp"
#include "model/tokenizer/byte_level.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <set>

using namespace actorserve;
using json = nlohmann::json;
using Catch::Matchers::Contains;

namespace {

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json read_json(const std::filesystem::path& path) { return json::parse(read_bytes(path)); }

/// Every file of a folder with its bytes.
std::map<std::string, std::string> folder_bytes(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    out[entry.path().filename().string()] = read_bytes(entry.path());
  return out;
}

make_model_options tiny(model_arch arch, uint64_t seed = 7) {
  make_model_options o;
  o.config = model_preset("tiny");
  o.config.arch = arch;
  o.seed = seed;
  return o;
}

/// The shapes Hugging Face's modeling code creates for a config, written out independently of
/// model_tensor_specs.
std::map<std::string, std::vector<int64_t>> expected_shapes(const model_config& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  std::map<std::string, std::vector<int64_t>> s;
  s["model.embed_tokens.weight"] = {c.vocab_size, h};
  s["model.norm.weight"] = {h};
  if (!c.tie_word_embeddings)
    s["lm_head.weight"] = {c.vocab_size, h};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    s[p + "input_layernorm.weight"] = {h};
    s[p + "post_attention_layernorm.weight"] = {h};
    s[p + "self_attn.q_proj.weight"] = {q, h};
    s[p + "self_attn.k_proj.weight"] = {kv, h};
    s[p + "self_attn.v_proj.weight"] = {kv, h};
    s[p + "self_attn.o_proj.weight"] = {h, q};
    s[p + "mlp.gate_proj.weight"] = {c.intermediate_size, h};
    s[p + "mlp.up_proj.weight"] = {c.intermediate_size, h};
    s[p + "mlp.down_proj.weight"] = {h, c.intermediate_size};
    if (c.arch == model_arch::qwen2) {
      s[p + "self_attn.q_proj.bias"] = {q};
      s[p + "self_attn.k_proj.bias"] = {kv};
      s[p + "self_attn.v_proj.bias"] = {kv};
    }
    if (c.arch == model_arch::qwen3) {
      s[p + "self_attn.q_norm.weight"] = {c.head_dim};
      s[p + "self_attn.k_norm.weight"] = {c.head_dim};
    }
  }
  return s;
}

std::vector<float> values_of(const tensor_view& t) {
  std::vector<float> v(size_t(t.numel()));
  convert_to_f32(t.type, t.data, v.data(), v.size());
  return v;
}

void mean_std(const std::vector<float>& v, double& mean, double& std_dev) {
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += double(x) * x;
  }
  mean = sum / double(v.size());
  std_dev = std::sqrt(sq / double(v.size()) - mean * mean);
}

} // namespace

TEST_CASE("make-model: tiny models are deterministic and match their config") {
  for (model_arch arch : {model_arch::llama, model_arch::qwen2, model_arch::qwen3, model_arch::mistral}) {
    INFO(arch_name(arch));
    testing::temp_dir a, b, c;
    auto result = make_model(a.path(), tiny(arch));
    make_model(b.path(), tiny(arch));
    auto first = folder_bytes(a.path());
    CHECK(first == folder_bytes(b.path()));
    CHECK(first.count("model.safetensors") == 1);
    for (const char* file : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"})
      CHECK(first.count(file) == 1);
    // Another seed, other weights; same everything else.
    make_model(c.path(), tiny(arch, 8));
    auto other = folder_bytes(c.path());
    CHECK(other["model.safetensors"] != first["model.safetensors"]);
    CHECK(other["model.safetensors"].size() == first["model.safetensors"].size());
    CHECK(other["config.json"] == first["config.json"]);

    // config.json reads back as the config the model was made with.
    model_config config = load_model_config(a.path());
    CHECK(config.arch == arch);
    CHECK(config.hidden_size == 64);
    CHECK(config.num_hidden_layers == 2);
    CHECK(config.num_attention_heads == 4);
    CHECK(config.num_key_value_heads == 2);
    CHECK(config.head_dim == 16);
    CHECK(config.intermediate_size == 128);
    CHECK(config.max_position_embeddings == 2048);
    CHECK(config.vocab_size == 320); // 262 tokens rounded up to 64
    CHECK(config.torch_dtype == "bfloat16");
    CHECK(config.bos_token_ids == std::vector<int64_t>{256});
    CHECK(config.eos_token_ids == std::vector<int64_t>{257, 261});
    CHECK(config.attention_bias == (arch == model_arch::qwen2));
    CHECK(config.qk_norm == (arch == model_arch::qwen3));
    CHECK(result.config.vocab_size == config.vocab_size);
    auto generation = read_json(a.path() / "generation_config.json");
    CHECK(generation["bos_token_id"] == 256);
    CHECK(generation["eos_token_id"] == json::array({257, 261}));

    // Every tensor has the shape the config implies, and nothing else is there.
    safetensors_model weights(a.path());
    auto shapes = expected_shapes(config);
    CHECK(weights.names().size() == shapes.size());
    uint64_t parameters = 0;
    for (const auto& [name, shape] : shapes) {
      INFO(name);
      const tensor_view* t = weights.find(name);
      REQUIRE(t);
      CHECK(t->shape == shape);
      CHECK(t->type == dtype::bf16);
      parameters += uint64_t(t->numel());
    }
    CHECK(result.num_parameters == parameters);
  }
}

TEST_CASE("make-model: values follow the documented distribution") {
  testing::temp_dir dir;
  auto o = tiny(model_arch::qwen2, 42);
  o.weight_type = dtype::f32; // exact values
  o.config.hidden_size = 256;
  o.config.intermediate_size = 512;
  make_model(dir.path(), o);
  safetensors_model weights(dir.path());
  double mean, std_dev;
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                           "model.embed_tokens.weight", "lm_head.weight"}) {
    INFO(name);
    const tensor_view& t = weights.get(name);
    auto v = values_of(t);
    mean_std(v, mean, std_dev);
    double expected_std = 1.0 / std::sqrt(double(t.shape[1]));
    CHECK(std::abs(mean) < 0.05 * expected_std);
    CHECK(std_dev == Approx(expected_std).epsilon(0.03));
    // Bounded: four uniforms never reach 3.47 std.
    for (float x : v)
      REQUIRE(std::abs(x) < 3.47 * expected_std);
    // The stored values are exactly what make_model_value documents.
    tensor_spec spec{name, dtype::f32, t.shape};
    for (int64_t i : {int64_t(0), int64_t(1), t.numel() / 2, t.numel() - 1})
      CHECK(v[size_t(i)] == make_model_value(42, spec, i));
  }
  auto norm = values_of(weights.get("model.layers.1.input_layernorm.weight"));
  mean_std(norm, mean, std_dev);
  CHECK(mean == Approx(1.0).margin(0.02));
  CHECK(std_dev == Approx(0.1).epsilon(0.2));
  auto bias = values_of(weights.get("model.layers.0.self_attn.q_proj.bias"));
  mean_std(bias, mean, std_dev);
  CHECK(std::abs(mean) < 0.02);
  CHECK(std_dev == Approx(0.1).epsilon(0.2));
  // Different tensors of the same shape are not copies of each other.
  CHECK(values_of(weights.get("model.layers.0.mlp.gate_proj.weight")) !=
        values_of(weights.get("model.layers.0.mlp.up_proj.weight")));
}

TEST_CASE("make-model: sharded output loads and holds the same tensors") {
  testing::temp_dir single, sharded;
  auto o = tiny(model_arch::llama);
  o.config.num_hidden_layers = 3;
  make_model(single.path(), o);
  o.shard_size_bytes = 100 * 1024;
  o.num_threads = 1;
  auto result = make_model(sharded.path(), o);
  REQUIRE(result.files.size() > 2);
  CHECK(result.files[0].filename() == "model-00001-of-0000" + std::to_string(result.files.size()) + ".safetensors");
  CHECK_FALSE(std::filesystem::exists(sharded.path() / "model.safetensors"));
  auto index = read_json(sharded.path() / "model.safetensors.index.json");
  CHECK(index["metadata"]["total_size"] == result.weight_bytes);

  safetensors_model a(single.path()), b(sharded.path());
  CHECK(b.files().size() == result.files.size());
  REQUIRE(a.names() == b.names());
  for (const auto& name : a.names()) {
    INFO(name);
    const tensor_view &x = a.get(name), &y = b.get(name);
    CHECK(x.shape == y.shape);
    REQUIRE(x.nbytes == y.nbytes);
    CHECK(std::memcmp(x.data, y.data, x.nbytes) == 0);
  }
  // No shard over the limit unless it holds a single tensor.
  for (const auto& file : b.files())
    if (file->tensors().size() > 1)
      CHECK(std::filesystem::file_size(file->path()) < 100 * 1024 + 4096);

  // Re-making unsharded into the same folder leaves no stale shards behind.
  o.shard_size_bytes = uint64_t{1} << 30;
  make_model(sharded.path(), o);
  CHECK_FALSE(std::filesystem::exists(sharded.path() / "model.safetensors.index.json"));
  CHECK_FALSE(std::filesystem::exists(result.files[0]));
  CHECK(safetensors_model(sharded.path()).files().size() == 1);
}

TEST_CASE("make-model: options") {
  testing::temp_dir dir;
  SECTION("tied embeddings have no lm_head") {
    auto o = tiny(model_arch::qwen3);
    o.config.tie_word_embeddings = true;
    o.config.head_dim = 32; // explicit, not hidden / heads
    make_model(dir.path(), o);
    auto config = load_model_config(dir.path());
    CHECK(config.tie_word_embeddings);
    CHECK(config.head_dim == 32);
    safetensors_model weights(dir.path());
    CHECK(weights.find("lm_head.weight") == nullptr);
    CHECK(weights.get("model.layers.0.self_attn.q_proj.weight").shape == std::vector<int64_t>{128, 64});
    CHECK(weights.get("model.layers.0.self_attn.q_norm.weight").shape == std::vector<int64_t>{32});
  }
  SECTION("f16 and an explicit vocabulary") {
    auto o = tiny(model_arch::mistral);
    o.weight_type = dtype::f16;
    o.config.vocab_size = 1000;
    make_model(dir.path(), o);
    auto config = load_model_config(dir.path());
    CHECK(config.torch_dtype == "float16");
    CHECK(config.vocab_size == 1000);
    CHECK(safetensors_model(dir.path()).get("lm_head.weight").type == dtype::f16);
  }
  SECTION("refusals") {
    auto o = tiny(model_arch::llama);
    o.config.vocab_size = 100;
    CHECK_THROWS_WITH(make_model(dir.path(), o), Contains("100") && Contains("smaller than the tokenizer (262"));
    o = tiny(model_arch::llama);
    o.config.num_key_value_heads = 3;
    CHECK_THROWS_WITH(make_model(dir.path(), o), Contains("num_key_value_heads"));
    CHECK_THROWS_WITH(model_preset("llama-70b"), Contains("llama-70b"));
  }
  SECTION("presets have the published shapes") {
    auto l = model_preset("llama3-8b");
    CHECK(l.hidden_size == 4096);
    CHECK(l.num_key_value_heads == 8);
    CHECK(l.rope_scaling.type == rope_scaling_type::llama3);
    int64_t parameters = 0;
    for (const auto& spec : model_tensor_specs(l, dtype::bf16))
      parameters += spec.numel();
    CHECK(parameters == 8030261248); // Meta-Llama-3-8B
    auto q = model_preset("qwen2.5-7b");
    q.attention_bias = true;
    parameters = 0;
    for (const auto& spec : model_tensor_specs(q, dtype::bf16))
      parameters += spec.numel();
    CHECK(parameters == 7615616512); // Qwen2.5-7B
  }
}

TEST_CASE("make-model: the byte-level tokenizer") {
  // The tokenizer's GPT-2 table, which spells make-model's vocabulary.
  CHECK(tokenization::byte_to_code_point('A') == U'A');
  CHECK(tokenization::byte_to_code_point(' ') == U'\u0120'); // GPT-2's "Ġ"
  CHECK(tokenization::byte_to_code_point('\n') == U'\u010A'); // "Ċ"
  CHECK(tokenization::byte_to_code_point(0xad) == U'\u0143');
  CHECK(tokenization::byte_to_code_point(0xff) == U'\u00FF');
  std::set<char32_t> code_points;
  for (int b = 0; b < 256; ++b)
    code_points.insert(tokenization::byte_to_code_point(uint8_t(b)));
  CHECK(code_points.size() == 256);

  auto t = json::parse(byte_tokenizer_json());
  // Token id b is the piece that stands for byte b.
  CHECK(t["model"]["vocab"]["\u0120"] == 32);
  CHECK(t["model"]["vocab"]["A"] == 65);
  for (const auto& [piece, id] : t["model"]["vocab"].items()) {
    std::string bytes;
    REQUIRE(tokenization::decode_byte_level(piece, bytes));
    CHECK(bytes == std::string(1, static_cast<char>(id.get<int>())));
  }
  CHECK(t["model"]["type"] == "BPE");
  CHECK(t["model"]["merges"].empty());
  CHECK(t["pre_tokenizer"]["type"] == "ByteLevel");
  CHECK(t["decoder"]["type"] == "ByteLevel");
  std::set<int64_t> ids;
  for (const auto& [piece, id] : t["model"]["vocab"].items())
    ids.insert(id.get<int64_t>());
  CHECK(ids.size() == 256);
  CHECK(*ids.rbegin() == 255);
  CHECK(t["model"]["vocab"]["\xc4\xa0"] == 32); // "Ġ" is the space byte
  CHECK(t["added_tokens"][0]["id"] == 256);
  CHECK(t["added_tokens"][0]["content"] == "<|begin_of_text|>");
  CHECK(t["added_tokens"][5]["content"] == "<|end|>");
  CHECK(t["added_tokens"][5]["id"] == byte_tokenizer_end_of_turn_id);

  auto c = json::parse(byte_tokenizer_config_json(2048));
  CHECK(c["bos_token"] == "<|begin_of_text|>");
  CHECK(c["eos_token"] == "<|end_of_text|>");
  CHECK(c["chat_template"].get<std::string>().find("add_generation_prompt") != std::string::npos);
}

TEST_CASE("make-model: --tokenizer copies a tokenizer and fits the vocabulary") {
  testing::temp_dir tok, out;
  json tokenizer = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}}}, {"merges", json::array()}}},
                    {"added_tokens", {{{"id", 5}, {"content", "<s>"}}, {{"id", 6}, {"content", "</s>"}}}}};
  std::ofstream(tok.path() / "tokenizer.json") << tokenizer.dump();
  std::ofstream(tok.path() / "tokenizer_config.json")
      << json{{"bos_token", "<s>"}, {"eos_token", {{"content", "</s>"}, {"__type", "AddedToken"}}}}.dump();
  std::ofstream(tok.path() / "special_tokens_map.json") << "{}";
  auto o = tiny(model_arch::llama);
  o.tokenizer_dir = tok.path();
  make_model(out.path(), o);
  auto config = load_model_config(out.path());
  CHECK(config.vocab_size == 7); // max id + 1, not rounded
  CHECK(config.bos_token_ids == std::vector<int64_t>{5});
  CHECK(config.eos_token_ids == std::vector<int64_t>{6});
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    CHECK(read_bytes(out.path() / file) == read_bytes(tok.path() / file));

  // A generation_config.json next to the tokenizer knows the end-of-turn ids.
  std::ofstream(tok.path() / "generation_config.json") << R"({"bos_token_id": 5, "eos_token_id": [6, 4]})";
  make_model(out.path(), o);
  CHECK(load_model_config(out.path()).eos_token_ids == std::vector<int64_t>{6, 4});

  // A preset's vocabulary is kept when it holds the tokenizer, replaced when it does not.
  o.config.vocab_size = 64;
  o.vocab_from_preset = true;
  make_model(out.path(), o);
  CHECK(load_model_config(out.path()).vocab_size == 64);
  o.config.vocab_size = 4;
  make_model(out.path(), o);
  CHECK(load_model_config(out.path()).vocab_size == 7);
  o.vocab_from_preset = false;
  CHECK_THROWS_WITH(make_model(out.path(), o), Contains("smaller than the tokenizer (7"));

  std::filesystem::remove(tok.path() / "tokenizer.json");
  CHECK_THROWS_WITH(make_model(out.path(), o), Contains("no tokenizer.json"));
}

TEST_CASE("make-model: real tokenizers size the vocabulary") {
  auto llama3 = testing::cache_dir() / "tokenizers" / "llama3";
  auto qwen3 = testing::cache_dir() / "tokenizers" / "qwen3";
  if (!std::filesystem::exists(llama3 / "tokenizer.json") || !std::filesystem::exists(qwen3 / "tokenizer.json")) {
    WARN("tokenizer assets absent (scripts/fetch-test-assets.sh): not checked");
    return;
  }
  auto l = summarize_tokenizer(llama3);
  CHECK(l.size == 128256);
  CHECK(l.bos_token_ids == std::vector<int64_t>{128000});
  CHECK(l.eos_token_ids == std::vector<int64_t>{128001});
  auto q = summarize_tokenizer(qwen3);
  CHECK(q.size == 151669);
  CHECK(q.bos_token_ids.empty());
  CHECK(q.eos_token_ids == std::vector<int64_t>{151645});
}

TEST_CASE("make-model: the command line") {
  if (!std::filesystem::exists(testing::executable())) {
    WARN("actorserve executable not built: not checked");
    return;
  }
  testing::temp_dir dir;
  auto out = dir.path() / "m";
  std::string cmd = testing::executable().string() + " make-model --preset tiny --arch qwen3 --layers 3 --seed 5 --out " +
                    out.string() + " --quiet --shard-size-mb 1 2>" + (dir.path() / "err").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto config = load_model_config(out);
  CHECK(config.arch == model_arch::qwen3);
  CHECK(config.num_hidden_layers == 3);
  CHECK(config.hidden_size == 64);
  // The same model through the library: same bytes.
  auto o = tiny(model_arch::qwen3, 5);
  o.config.num_hidden_layers = 3;
  make_model(dir.path() / "lib", o);
  CHECK(read_bytes(out / "model.safetensors") == read_bytes(dir.path() / "lib" / "model.safetensors"));
  CHECK_THAT(read_bytes(dir.path() / "err"), Contains("wrote") && Contains("qwen3"));

  cmd = testing::executable().string() + " make-model --hidden 64 --out " + out.string() + " 2>" +
        (dir.path() / "err").string();
  CHECK(std::system(cmd.c_str()) != 0);
  CHECK_THAT(read_bytes(dir.path() / "err"), Contains("--layers is required"));
  cmd = testing::executable().string() + " make-model --preset tiny --heads 3 --out " + out.string() + " 2>" +
        (dir.path() / "err").string();
  CHECK(std::system(cmd.c_str()) != 0);
  CHECK_THAT(read_bytes(dir.path() / "err"), Contains("num_key_value_heads"));
}
