#pragma once
// Reading the tokenizer fixtures: the corpus (tests/fixtures/tokenizer/corpus.jsonl) and the
// reference ids/texts that Hugging Face `tokenizers` gave (<name>.jsonl.gz, made by
// scripts/make_tokenizer_fixtures.py), and loading the real tokenizer files fetched by
// scripts/assets.d/tokenizers.sh.

#include "model/tokenizer/tokenizer.hpp"
#include "tests/testing.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace actorserve::testing {

inline std::filesystem::path tokenizer_fixture_dir() { return source_dir() / "tests" / "fixtures" / "tokenizer"; }

/// The real tokenizer files of `name` (llama3, qwen3, ...). Throws when they are missing:
/// scripts/test.sh fetches them before the tests run, so absence is a failure, not a skip.
std::filesystem::path real_tokenizer_dir(const std::string& name);

/// All lines of a text file, gzip-compressed or not (by the .gz suffix).
std::vector<std::string> read_lines(const std::filesystem::path& path);

const std::vector<std::string>& tokenizer_corpus();

struct corpus_case {
  size_t index = 0;
  std::vector<uint32_t> ids;
  std::optional<std::vector<uint32_t>> ids_with_special; // present when it differs from ids
  bool checks_special = false;                           // index % 5 == 0: ids_with_special known
  std::optional<std::string> decoded;                    // present when it differs from the input
  std::optional<std::string> decoded_skip;               // present when it differs from decoded
};

struct random_case {
  std::vector<uint32_t> ids;
  std::string decoded, decoded_skip;
};

struct tokenizer_fixture {
  std::string name, base;
  nlohmann::json variant; // null for a real tokenizer as published
  std::vector<corpus_case> corpus;
  std::vector<random_case> random;
};

tokenizer_fixture load_tokenizer_fixture(const std::string& name);

/// The tokenizer a fixture was made with: the real file, with the variant's changes applied.
tokenizer load_fixture_tokenizer(const tokenizer_fixture& fixture);

/// Names of all fixtures (real tokenizers and variants) present in the fixture folder.
std::vector<std::string> tokenizer_fixture_names();

} // namespace actorserve::testing
