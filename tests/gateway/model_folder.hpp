#pragma once
// A model folder the gateway's text frontend accepts, made of a real tokenizer fetched by
// scripts/assets.d/tokenizers.sh plus the demo model's config.json.

#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace actorserve::gateway::test {

inline std::filesystem::path model_folder(const std::string& tokenizer, const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  const fs::path source = actorserve::testing::cache_dir() / "tokenizers" / tokenizer;
  INFO("run scripts/fetch-test-assets.sh to fetch " << source);
  REQUIRE(fs::exists(source / "tokenizer_config.json"));
  const fs::path dir = root / tokenizer;
  fs::create_directories(dir);
  fs::create_symlink(source / "tokenizer.json", dir / "tokenizer.json");
  fs::create_symlink(source / "tokenizer_config.json", dir / "tokenizer_config.json");
  fs::copy_file(actorserve::testing::source_dir() / "models" / "demo" / "config.json", dir / "config.json");
  return dir;
}

} // namespace actorserve::gateway::test
