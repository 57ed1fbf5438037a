#pragma once
// The tiny models the CPU backend is tested with, re-created from their seeds with make_model
// (model/make_model.hpp). The same definitions write the models that Hugging Face transformers
// loads for the reference fixtures (scripts/make-hf-fixtures.sh), so a fixture and its test
// always describe the same weights.

#include "model/backend.hpp"
#include "model/cpu_backend.hpp"
#include "model/generate_loop.hpp"
#include "model/make_model.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace actorserve::testing {

struct test_model_spec {
  std::string name;          // fixture name: tests/fixtures/hf/<name>.json
  std::string features;      // what it exercises
  make_model_options options;
};

/// llama (llama3 rope scaling, bf16), llama_linear (linear rope scaling), qwen2 (q/k/v bias,
/// tied embeddings), qwen3 (q/k norm, head_dim 32 != hidden/heads, f16 weights), mistral
/// (plain, 4:1 GQA, f32 weights).
const std::vector<test_model_spec>& test_model_specs();
const test_model_spec& test_model(const std::string& name);

/// Writes the model into `dir` with a make_model.json describing how it was made.
void write_test_model(const test_model_spec& spec, const std::filesystem::path& dir);

/// A test model written to a temporary folder for the life of the object.
class temp_model {
public:
  explicit temp_model(const std::string& name);
  ~temp_model();
  temp_model(const temp_model&) = delete;
  temp_model& operator=(const temp_model&) = delete;
  const std::filesystem::path& dir() const { return dir_; }
  std::unique_ptr<backend> load(const cpu_backend_options& options = {}) const;

private:
  std::filesystem::path dir_;
};

/// A step_sequence with these fields.
step_sequence make_sequence(uint64_t id, int32_t computed, int32_t new_tokens, std::vector<int32_t> block_table,
                            bool needs_logits);

/// Runs one step and returns the raw logits [num_logits, vocab] (greedy sampling).
std::vector<float> step_logits(backend& b, const step_batch& step);

/// max |a - b| (requires equal sizes).
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

} // namespace actorserve::testing
