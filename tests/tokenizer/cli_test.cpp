// `actorserve tokenize` end to end: the real binary, stdin in, stdout out.
#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve;
using namespace actorserve::testing;

namespace {

command_result run_cli(const std::string& args, const std::string& input) {
  temp_dir dir;
  auto in_path = dir.path() / "stdin";
  std::ofstream(in_path, std::ios::binary) << input;
  return run_command(executable().string() + " tokenize " + args + " < " + in_path.string() + " 2>/dev/null");
}

} // namespace

TEST_CASE("tokenizer: actorserve tokenize encodes and decodes like the library", "[tokenizer][cli]") {
  std::string dir = real_tokenizer_dir("llama2").string();
  tokenizer tok = tokenizer::from_dir(dir);
  std::string text = "Hello world, \xe4\xbd\xa0\xe5\xa5\xbd!\n";

  auto encoded = run_cli("--tokenizer " + dir, text);
  REQUIRE(encoded.status == 0);
  CHECK(nlohmann::json::parse(encoded.out).get<std::vector<uint32_t>>() == tok.encode(text));

  auto with_bos = run_cli("--tokenizer " + dir + " --add-special-tokens", text);
  REQUIRE(with_bos.status == 0);
  auto ids = nlohmann::json::parse(with_bos.out).get<std::vector<uint32_t>>();
  REQUIRE(!ids.empty());
  CHECK(ids.front() == 1); // <s>

  auto decoded = run_cli("--tokenizer " + dir + " --decode", nlohmann::json(ids).dump());
  REQUIRE(decoded.status == 0);
  CHECK(decoded.out == "<s> " + text);
  auto skipped = run_cli("--tokenizer " + dir + " --decode --skip-special-tokens", nlohmann::json(ids).dump());
  CHECK(skipped.out == text);
}

TEST_CASE("tokenizer: actorserve tokenize --jsonl handles batches and reports bad lines", "[tokenizer][cli]") {
  std::string dir = real_tokenizer_dir("qwen3").string();
  tokenizer tok = tokenizer::from_dir(dir);
  std::vector<std::string> texts = {"one", "two words", "", "<|im_start|>user\nhi<|im_end|>", "\xf0\x9f\x98\x80"};
  std::string input;
  for (const auto& t : texts)
    input += nlohmann::json(t).dump() + "\n";
  auto r = run_cli("--tokenizer " + dir + " --jsonl", input);
  REQUIRE(r.status == 0);
  std::istringstream lines(r.out);
  std::string line, back;
  for (const auto& t : texts) {
    REQUIRE(std::getline(lines, line));
    auto ids = nlohmann::json::parse(line).get<std::vector<uint32_t>>();
    CHECK(ids == tok.encode(t));
    back += nlohmann::json(ids).dump() + "\n";
  }
  auto decoded = run_cli("--tokenizer " + dir + " --jsonl --decode", back);
  REQUIRE(decoded.status == 0);
  std::istringstream decoded_lines(decoded.out);
  for (const auto& t : texts) {
    REQUIRE(std::getline(decoded_lines, line));
    CHECK(nlohmann::json::parse(line).get<std::string>() == t);
  }
  CHECK(run_cli("--tokenizer " + dir + " --jsonl", "\"ok\"\nnot json\n").status == 1);
  CHECK(run_cli("--tokenizer " + dir, "bad \xff utf-8").status == 1);
  CHECK(run_cli("--tokenizer " + dir + " --decode", "[1, -2]").status == 1);
  CHECK(run_cli("--tokenizer /nonexistent", "x").status == 1);
}
