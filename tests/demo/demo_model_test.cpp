// The bundled demo model (models/demo) is served as trained: actorserve's tokenizer and CPU
// backend reproduce Hugging Face transformers' prompt ids and 64-token greedy continuations
// (tests/fixtures/demo/hf_greedy.json, made by scripts/train-demo-model.py on the GPU machine).
#include "model/cpu_backend.hpp"
#include "model/generate_loop.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve;

namespace {

nlohmann::json load_fixture() {
  std::ifstream in(testing::source_dir() / "tests/fixtures/demo/hf_greedy.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

} // namespace

TEST_CASE("demo model: the tokenizer gives transformers' prompt ids") {
  auto fixture = load_fixture();
  auto tok = tokenizer::from_dir(testing::source_dir() / "models/demo");
  REQUIRE(fixture["cases"].size() == 10);
  for (const auto& c : fixture["cases"]) {
    auto ids = tok.encode(c["prompt"].get<std::string>(), /*add_special_tokens=*/true);
    std::vector<int64_t> got(ids.begin(), ids.end());
    CHECK(got == c["prompt_ids"].get<std::vector<int64_t>>());
    auto greedy = c["greedy_ids"].get<std::vector<int32_t>>();
    CHECK(tok.decode(greedy) == c["greedy_text"].get<std::string>());
  }
}

TEST_CASE("demo model: CPU backend greedy tokens equal transformers' for 10 prompts") {
  auto fixture = load_fixture();
  auto backend = make_cpu_backend(testing::source_dir() / "models/demo", {.max_kv_tokens = 2048});
  for (const auto& c : fixture["cases"]) {
    generation_options options;
    options.max_tokens = 64;
    options.ignore_eos = true;
    options.sampling.temperature = 0.0f;
    auto result = generate_sequence(*backend, c["prompt_ids"].get<std::vector<int32_t>>(), options);
    INFO("prompt: " << c["prompt"].get<std::string>());
    CHECK(result.token_ids == c["greedy_ids"].get<std::vector<int32_t>>());
  }
}
