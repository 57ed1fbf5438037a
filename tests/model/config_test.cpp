#include "model/config.hpp"
#include "model/error.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve;
using json = nlohmann::json;

namespace {

// The config.json of Meta-Llama-3.1-8B, as published.
json llama31_8b() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "use_cache": true, "vocab_size": 128256})");
}

json qwen25_7b() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
    "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 152064})");
}

json qwen3_06b() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true,
    "use_sliding_window": false, "vocab_size": 151936})");
}

json mistral_7b_v03() {
  return json::parse(R"({
    "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32768})");
}

/// Parses `j` and returns the model_error's message ("" when it parsed).
std::string refusal(const json& j) {
  try {
    parse_model_config(j.dump());
  } catch (const model_error& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("config: Llama 3.1 8B") {
  auto c = parse_model_config(llama31_8b().dump());
  CHECK(c.arch == model_arch::llama);
  CHECK(c.architecture == "LlamaForCausalLM");
  CHECK(arch_name(c.arch) == "llama");
  CHECK(c.hidden_size == 4096);
  CHECK(c.intermediate_size == 14336);
  CHECK(c.num_hidden_layers == 32);
  CHECK(c.num_attention_heads == 32);
  CHECK(c.num_key_value_heads == 8);
  CHECK(c.head_dim == 128);
  CHECK(c.q_size() == 4096);
  CHECK(c.kv_size() == 1024);
  CHECK(c.vocab_size == 128256);
  CHECK(c.max_position_embeddings == 131072);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling.type == rope_scaling_type::llama3);
  CHECK(c.rope_scaling.factor == 8.0);
  CHECK(c.rope_scaling.low_freq_factor == 1.0);
  CHECK(c.rope_scaling.high_freq_factor == 4.0);
  CHECK(c.rope_scaling.original_max_position_embeddings == 8192);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.qk_norm);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.bos_token_ids == std::vector<int64_t>{128000});
  CHECK(c.eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});
}

TEST_CASE("config: Qwen2.5 7B has q/k/v biases") {
  auto c = parse_model_config(qwen25_7b().dump());
  CHECK(c.arch == model_arch::qwen2);
  CHECK(c.attention_bias);
  CHECK_FALSE(c.qk_norm);
  CHECK(c.head_dim == 128);
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.rope_theta == 1e6);
  CHECK(c.rope_scaling.type == rope_scaling_type::none);
  CHECK(c.eos_token_ids == std::vector<int64_t>{151645});
}

TEST_CASE("config: Qwen3 has q/k norms and an explicit head_dim") {
  auto c = parse_model_config(qwen3_06b().dump());
  CHECK(c.arch == model_arch::qwen3);
  CHECK(c.qk_norm);
  CHECK_FALSE(c.attention_bias);
  CHECK(c.head_dim == 128); // not hidden / heads = 64
  CHECK(c.q_size() == 2048);
  CHECK(c.tie_word_embeddings);
  CHECK(c.rope_theta == 1e6); // an integer in the JSON is fine for a float field
}

TEST_CASE("config: Mistral without a sliding window") {
  auto c = parse_model_config(mistral_7b_v03().dump());
  CHECK(c.arch == model_arch::mistral);
  CHECK(c.head_dim == 128);
  // A window as long as the context changes nothing.
  auto j = mistral_7b_v03();
  j["sliding_window"] = 32768;
  CHECK(refusal(j).empty());
}

TEST_CASE("config: defaults follow transformers") {
  json j = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
            {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"vocab_size", 300}};
  auto c = parse_model_config(j.dump());
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 16);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rope_scaling.type == rope_scaling_type::none);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.bos_token_ids.empty());
  // No `architectures`: the model_type decides, as in AutoConfig.
  j.erase("architectures");
  j["model_type"] = "qwen3";
  c = parse_model_config(j.dump());
  CHECK(c.arch == model_arch::qwen3);
  CHECK(c.head_dim == 128);
  CHECK(c.architecture == "Qwen3ForCausalLM");
}

TEST_CASE("config: rope scaling spellings") {
  auto j = llama31_8b();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto c = parse_model_config(j.dump());
  CHECK(c.rope_scaling.type == rope_scaling_type::linear);
  CHECK(c.rope_scaling.factor == 2.0);

  j["rope_scaling"] = {{"rope_type", "default"}};
  CHECK(parse_model_config(j.dump()).rope_scaling.type == rope_scaling_type::none);
  j["rope_scaling"] = nullptr;
  CHECK(parse_model_config(j.dump()).rope_scaling.type == rope_scaling_type::none);

  // transformers 5 writes rope_parameters, which carries rope_theta too.
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  c = parse_model_config(j.dump());
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling.type == rope_scaling_type::llama3);
  CHECK(c.rope_scaling.factor == 8.0);
}

TEST_CASE("config: refusals name the field") {
  using Catch::Matchers::Contains;
  auto j = llama31_8b();
  j["architectures"] = {"GPT2LMHeadModel"};
  CHECK_THAT(refusal(j), Contains("architectures") && Contains("GPT2LMHeadModel") && Contains("LlamaForCausalLM"));

  j = llama31_8b();
  j.erase("architectures");
  j.erase("model_type");
  CHECK_THAT(refusal(j), Contains("architectures") && Contains("missing"));

  j = llama31_8b();
  j.erase("hidden_size");
  CHECK_THAT(refusal(j), Contains("'hidden_size'") && Contains("missing"));

  j = llama31_8b();
  j["hidden_size"] = "4096";
  CHECK_THAT(refusal(j), Contains("'hidden_size'") && Contains("integer"));

  j = llama31_8b();
  j["intermediate_size"] = 14336.5;
  CHECK_THAT(refusal(j), Contains("'intermediate_size'") && Contains("integer"));

  j = llama31_8b();
  j["num_hidden_layers"] = 0;
  CHECK_THAT(refusal(j), Contains("'num_hidden_layers'") && Contains("positive"));

  j = llama31_8b();
  j["vocab_size"] = -5;
  CHECK_THAT(refusal(j), Contains("'vocab_size'") && Contains("positive"));

  j = llama31_8b();
  j["num_key_value_heads"] = 5;
  CHECK_THAT(refusal(j), Contains("'num_key_value_heads'") && Contains("divide"));

  j = llama31_8b();
  j["rms_norm_eps"] = "small";
  CHECK_THAT(refusal(j), Contains("'rms_norm_eps'") && Contains("number"));

  j = llama31_8b();
  j["tie_word_embeddings"] = 1;
  CHECK_THAT(refusal(j), Contains("'tie_word_embeddings'"));

  j = llama31_8b();
  j["hidden_act"] = "gelu";
  CHECK_THAT(refusal(j), Contains("'hidden_act'") && Contains("gelu"));

  j = llama31_8b();
  j["quantization_config"] = {{"quant_method", "fp8"}};
  CHECK_THAT(refusal(j), Contains("'quantization_config'") && Contains("fp8"));

  j = llama31_8b();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  CHECK_THAT(refusal(j), Contains("'rope_scaling.rope_type'") && Contains("yarn"));

  j = llama31_8b();
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 4.0}};
  CHECK_THAT(refusal(j), Contains("'rope_scaling.type'") && Contains("dynamic"));

  j = llama31_8b();
  j["rope_scaling"].erase("low_freq_factor");
  CHECK_THAT(refusal(j), Contains("'rope_scaling.low_freq_factor'") && Contains("missing"));

  j = llama31_8b();
  j["attention_bias"] = true;
  CHECK_THAT(refusal(j), Contains("'attention_bias'"));

  j = llama31_8b();
  j["bos_token_id"] = "<s>";
  CHECK_THAT(refusal(j), Contains("'bos_token_id'"));

  j = llama31_8b();
  j["hidden_size"] = 4100; // not a multiple of 32 heads, and no head_dim
  CHECK_THAT(refusal(j), Contains("'head_dim'"));
}

TEST_CASE("config: sliding windows that would change results are refused") {
  using Catch::Matchers::Contains;
  auto j = qwen25_7b();
  j["use_sliding_window"] = true;
  CHECK_THAT(refusal(j), Contains("'use_sliding_window'"));

  j = qwen3_06b();
  j["use_sliding_window"] = true;
  CHECK_THAT(refusal(j), Contains("'use_sliding_window'"));

  j = qwen25_7b();
  j["layer_types"] = json::array({"full_attention", "sliding_attention"});
  CHECK_THAT(refusal(j), Contains("'layer_types'") && Contains("sliding_attention"));

  j = mistral_7b_v03(); // Mistral 7B v0.1 had a 4096-token window
  j["sliding_window"] = 4096;
  CHECK_THAT(refusal(j), Contains("'sliding_window'") && Contains("4096"));
}

TEST_CASE("config: bad JSON and wrong top-level type") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(parse_model_config("{\"hidden_size\": "), Contains("config.json") && Contains("JSON"));
  CHECK_THROWS_WITH(parse_model_config("[1, 2]"), Contains("object"));
  testing::temp_dir dir;
  CHECK_THROWS_WITH(load_model_config(dir.path()), Contains((dir.path() / "config.json").string()));
  std::ofstream(dir.path() / "config.json") << "{}";
  CHECK_THROWS_WITH(load_model_config(dir.path()),
                    Contains((dir.path() / "config.json").string()) && Contains("architectures"));
}

TEST_CASE("config: to_json round trip") {
  for (const auto& j : {llama31_8b(), qwen25_7b(), qwen3_06b(), mistral_7b_v03()}) {
    auto c = parse_model_config(j.dump());
    auto again = parse_model_config(model_config_to_json(c));
    CHECK(again.arch == c.arch);
    CHECK(again.architecture == c.architecture);
    CHECK(again.hidden_size == c.hidden_size);
    CHECK(again.intermediate_size == c.intermediate_size);
    CHECK(again.num_hidden_layers == c.num_hidden_layers);
    CHECK(again.num_attention_heads == c.num_attention_heads);
    CHECK(again.num_key_value_heads == c.num_key_value_heads);
    CHECK(again.head_dim == c.head_dim);
    CHECK(again.vocab_size == c.vocab_size);
    CHECK(again.max_position_embeddings == c.max_position_embeddings);
    CHECK(again.rms_norm_eps == c.rms_norm_eps);
    CHECK(again.rope_theta == c.rope_theta);
    CHECK(again.rope_scaling.type == c.rope_scaling.type);
    CHECK(again.rope_scaling.factor == c.rope_scaling.factor);
    CHECK(again.rope_scaling.low_freq_factor == c.rope_scaling.low_freq_factor);
    CHECK(again.rope_scaling.high_freq_factor == c.rope_scaling.high_freq_factor);
    CHECK(again.rope_scaling.original_max_position_embeddings ==
          c.rope_scaling.original_max_position_embeddings);
    CHECK(again.tie_word_embeddings == c.tie_word_embeddings);
    CHECK(again.attention_bias == c.attention_bias);
    CHECK(again.qk_norm == c.qk_norm);
    CHECK(again.torch_dtype == c.torch_dtype);
    CHECK(again.bos_token_ids == c.bos_token_ids);
    CHECK(again.eos_token_ids == c.eos_token_ids);
  }
  model_config linear;
  linear.arch = model_arch::mistral;
  linear.hidden_size = 64;
  linear.intermediate_size = 96;
  linear.num_hidden_layers = 1;
  linear.num_attention_heads = 4;
  linear.num_key_value_heads = 1;
  linear.head_dim = 32;
  linear.vocab_size = 320;
  linear.max_position_embeddings = 512;
  linear.rope_scaling.type = rope_scaling_type::linear;
  linear.rope_scaling.factor = 2.5;
  auto again = parse_model_config(model_config_to_json(linear));
  CHECK(again.architecture == "MistralForCausalLM");
  CHECK(again.head_dim == 32);
  CHECK(again.rope_scaling.type == rope_scaling_type::linear);
  CHECK(again.rope_scaling.factor == 2.5);
}
