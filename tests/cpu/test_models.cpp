#include "tests/cpu/test_models.hpp"

#include "model/error.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>

namespace actorserve::testing {
namespace {

make_model_options tiny(model_arch arch, uint64_t seed, dtype type) {
  make_model_options o;
  model_config& c = o.config;
  c.arch = arch;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 128;
  c.vocab_size = 0; // the byte tokenizer's size
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  o.weight_type = type;
  o.seed = seed;
  o.num_threads = 1;
  return o;
}

std::vector<test_model_spec> make_specs() {
  std::vector<test_model_spec> specs;
  {
    auto o = tiny(model_arch::llama, 101, dtype::bf16);
    o.config.rope_theta = 500000.0;
    // A short original context so that the 8 frequencies of head_dim 16 fall in all three
    // bands of the llama3 rule: wavelength 2*pi/inv_freq below 64/4 kept (1.0), between 16
    // and 64 smoothed (0.194), above 64 divided by the factor (the other six).
    o.config.rope_scaling = {rope_scaling_type::llama3, 4.0, 1.0, 4.0, 64};
    specs.push_back({"llama", "llama3 rope scaling, rope_theta 500000, bf16", o});
  }
  {
    auto o = tiny(model_arch::llama, 102, dtype::bf16);
    o.config.rope_scaling.type = rope_scaling_type::linear;
    o.config.rope_scaling.factor = 2.0;
    specs.push_back({"llama_linear", "linear rope scaling (factor 2), bf16", o});
  }
  {
    auto o = tiny(model_arch::qwen2, 103, dtype::bf16);
    o.config.rope_theta = 1e6;
    o.config.rms_norm_eps = 1e-6;
    o.config.attention_bias = true;
    o.config.tie_word_embeddings = true;
    specs.push_back({"qwen2", "q/k/v bias, tied embeddings, bf16", o});
  }
  {
    auto o = tiny(model_arch::qwen3, 104, dtype::f16);
    o.config.head_dim = 32; // != hidden / heads = 16
    o.config.rope_theta = 1e6;
    o.config.rms_norm_eps = 1e-6;
    specs.push_back({"qwen3", "per-head q/k RMSNorm, head_dim 32 != hidden/heads, f16", o});
  }
  {
    auto o = tiny(model_arch::mistral, 105, dtype::f32);
    o.config.num_key_value_heads = 1;
    o.config.intermediate_size = 160;
    specs.push_back({"mistral", "plain, 4:1 GQA, f32", o});
  }
  return specs;
}

} // namespace

const std::vector<test_model_spec>& test_model_specs() {
  static const std::vector<test_model_spec> specs = make_specs();
  return specs;
}

const test_model_spec& test_model(const std::string& name) {
  for (const auto& s : test_model_specs())
    if (s.name == name)
      return s;
  throw model_error("no test model named " + name);
}

void write_test_model(const test_model_spec& spec, const std::filesystem::path& dir) {
  const make_model_result r = make_model(dir, spec.options);
  nlohmann::json j{{"name", spec.name},
                   {"features", spec.features},
                   {"seed", spec.options.seed},
                   {"weight_type", std::string(dtype_name(spec.options.weight_type))},
                   {"made_by", "tests/cpu/test_models.cpp (make_model library function)"},
                   {"num_parameters", r.num_parameters}};
  std::ofstream(dir / "make_model.json") << j.dump(2) << "\n";
}

temp_model::temp_model(const std::string& name) {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path() / ("actorserve-model-" + name + "-" + std::to_string(rd()));
  write_test_model(test_model(name), dir_);
}

temp_model::~temp_model() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::unique_ptr<backend> temp_model::load(const cpu_backend_options& options) const {
  cpu_backend_options o = options;
  if (o.num_blocks == 0)
    o.num_blocks = 64;
  return make_cpu_backend(dir_, o);
}

step_sequence make_sequence(uint64_t id, int32_t computed, int32_t new_tokens, std::vector<int32_t> block_table,
                            bool needs_logits) {
  step_sequence s;
  s.seq_id = id;
  s.num_computed_tokens = computed;
  s.num_new_tokens = new_tokens;
  s.needs_logits = needs_logits;
  s.block_table = std::move(block_table);
  return s;
}

std::vector<float> step_logits(backend& b, const step_batch& step) {
  sequence_sampling_state greedy;
  greedy.params.temperature = 0.0f;
  const std::vector<const sequence_sampling_state*> sampling(size_t(step.num_logits()), &greedy);
  std::vector<sampled_token> out;
  std::vector<float> logits;
  b.execute(step, sampling, out, &logits);
  return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Not a test: writes every test model into $ACTORSERVE_HF_MODELS_DIR/<name>/ for
// scripts/make-hf-fixtures.sh. Hidden ("[.]"), so ctest never runs it.
TEST_CASE("write the test models for the Hugging Face reference", "[.write-hf-models]") {
  const char* dir = std::getenv("ACTORSERVE_HF_MODELS_DIR");
  REQUIRE(dir != nullptr);
  for (const auto& spec : test_model_specs())
    write_test_model(spec, std::filesystem::path(dir) / spec.name);
}

} // namespace actorserve::testing
