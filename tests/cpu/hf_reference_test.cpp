// The CPU backend against Hugging Face transformers (an implementation nobody here wrote):
// fixtures made by scripts/make-hf-fixtures.sh (scripts/hf_reference.py on the GPU machine,
// float32 eager attention on the CPU there) for the test models of test_models.cpp, and the
// greedy continuations of the trained demo model (tests/fixtures/demo/hf_greedy.json).
#include "model/cpu_rope.hpp"
#include "model/safetensors.hpp"
#include "tests/cpu/test_models.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iostream>

using namespace actorserve;
using namespace actorserve::testing;
using json = nlohmann::json;

namespace {

// fp32 against fp32: the two sides sum in different orders (AVX2 lanes vs MKL/oneDNN), which
// moves logits of order one by about 1e-6; 1e-4 leaves room for deeper or wider test models.
constexpr float logit_tolerance = 1e-4f;

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return json::parse(in);
}

// `dir` holds the model of fixture `name`.
void check_against_fixture(const std::string& name, const std::filesystem::path& dir) {
  const json fx = read_json(source_dir() / "tests/fixtures/hf" / (name + ".json"));
  cpu_backend_options options;
  options.num_blocks = 64;
  auto load = [&] { return make_cpu_backend(dir, options); };

  // The weights are the ones transformers read (else: regenerate the fixtures).
  {
    safetensors_model st(dir);
    for (const auto& [tensor, expected_sum] : fx.at("tensor_sums").items()) {
      if (tensor == "lm_head.weight" && !st.find(tensor))
        continue; // tied: transformers lists the shared embedding twice
      const tensor_view& t = st.get(tensor);
      std::vector<float> values(size_t(t.numel()));
      convert_to_f32(t.type, t.data, values.data(), values.size());
      double sum = 0.0;
      for (float v : values)
        sum += v;
      INFO(name << ": " << tensor);
      REQUIRE(sum == Approx(expected_sum.get<double>()).epsilon(1e-9).margin(1e-9));
    }
  }

  auto b = load();
  const model_config& c = b->config();
  // Rotary frequencies: rope_theta and rope_scaling read as transformers reads them.
  const std::vector<float> inv_freq = rope_inv_freq(c);
  const auto hf_inv_freq = fx.at("inv_freq").get<std::vector<float>>();
  REQUIRE(inv_freq.size() == hf_inv_freq.size());
  for (size_t i = 0; i < inv_freq.size(); ++i)
    CHECK(inv_freq[i] == Approx(hf_inv_freq[i]).epsilon(1e-6));

  float worst = 0.0f;
  for (const auto& cs : fx.at("cases")) {
    const auto prompt = cs.at("prompt_ids").get<std::vector<int32_t>>();
    const auto hf_logits = cs.at("last_logits").get<std::vector<float>>();
    const auto hf_greedy = cs.at("greedy_ids").get<std::vector<int32_t>>();
    INFO(name << " prompt " << cs.at("name").get<std::string>());

    // Logits of the last prompt position, the whole prompt in one step.
    auto fresh = load();
    step_batch step;
    step_sequence s;
    s.num_new_tokens = int32_t(prompt.size());
    s.needs_logits = true;
    for (int32_t i = 0; i * 16 < s.num_new_tokens; ++i)
      s.block_table.push_back(i);
    step.add(s, prompt.data());
    const std::vector<float> logits = step_logits(*fresh, step);
    REQUIRE(logits.size() == hf_logits.size());
    const float diff = max_abs_diff(logits, hf_logits);
    worst = std::max(worst, diff);
    CHECK(diff < logit_tolerance);

    // 32 greedy tokens, the prompt prefilled in chunks of 7.
    generation_options g;
    g.max_tokens = int32_t(hf_greedy.size());
    g.ignore_eos = true;
    g.chunk_size = 7;
    g.sampling.temperature = 0.0f;
    CHECK(generate_sequence(*fresh, prompt, g).token_ids == hf_greedy);
  }
  // Recorded for the closing note (`test_cpu -s` or ctest -V shows it).
  std::cout << "hf reference " << name << ": max |logit diff| " << worst << " (" << fx.at("transformers").get<std::string>()
            << ")\n";
}

void check_test_model(const std::string& name) {
  temp_model m(name); // re-created from its seed
  check_against_fixture(name, m.dir());
}

} // namespace

TEST_CASE("llama (llama3 rope scaling) matches transformers") { check_test_model("llama"); }
TEST_CASE("llama (linear rope scaling) matches transformers") { check_test_model("llama_linear"); }
TEST_CASE("qwen2 (bias, tied embeddings) matches transformers") { check_test_model("qwen2"); }
TEST_CASE("qwen3 (q/k norm, head_dim 32) matches transformers") { check_test_model("qwen3"); }
TEST_CASE("mistral matches transformers") { check_test_model("mistral"); }
TEST_CASE("the trained demo model's logits match transformers") {
  check_against_fixture("demo", source_dir() / "models/demo");
}

TEST_CASE("the demo model's greedy continuations match transformers, all prompts in one batch") {
  const json fx = read_json(source_dir() / "tests/fixtures/demo/hf_greedy.json");
  cpu_backend_options o;
  o.num_blocks = 80;
  auto b = make_cpu_backend(source_dir() / "models/demo", o);
  const auto& cases = fx.at("cases");
  const int32_t steps = fx.at("max_new_tokens").get<int32_t>();
  const size_t n = cases.size();
  std::vector<std::vector<int32_t>> tokens(n), expected(n);
  std::vector<step_sequence> seqs(n);
  sequence_sampling_state greedy;
  greedy.params.temperature = 0.0f;
  const std::vector<const sequence_sampling_state*> sampling(n, &greedy);
  for (size_t i = 0; i < n; ++i) {
    tokens[i] = cases[i].at("prompt_ids").get<std::vector<int32_t>>();
    expected[i] = cases[i].at("greedy_ids").get<std::vector<int32_t>>();
    REQUIRE(int32_t(expected[i].size()) == steps);
    seqs[i].seq_id = i;
    seqs[i].needs_logits = true;
    for (int32_t blk = 0; blk < 8; ++blk) // 8 blocks of 16: prompt + 64 tokens
      seqs[i].block_table.push_back(int32_t(i) * 8 + blk);
    REQUIRE(int32_t(tokens[i].size()) + steps <= 128);
  }
  std::vector<sampled_token> out;
  // Step 0 prefills every prompt; each later step decodes one token of every sequence.
  for (int32_t k = 0; k < steps; ++k) {
    step_batch step;
    for (size_t i = 0; i < n; ++i) {
      const int32_t new_tokens = k == 0 ? int32_t(tokens[i].size()) : 1;
      seqs[i].num_computed_tokens = int32_t(tokens[i].size()) - new_tokens;
      seqs[i].num_new_tokens = new_tokens;
      step.add(seqs[i], tokens[i].data() + seqs[i].num_computed_tokens);
    }
    b->execute(step, sampling, out);
    for (size_t i = 0; i < n; ++i)
      tokens[i].push_back(out[i].token);
  }
  for (size_t i = 0; i < n; ++i) {
    INFO("prompt " << cases[i].at("prompt").get<std::string>());
    CHECK(std::vector<int32_t>(tokens[i].end() - steps, tokens[i].end()) == expected[i]);
  }
}
