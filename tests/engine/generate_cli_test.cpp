// `actorserve generate --prompts FILE` end to end: the binary runs many requests at once through
// the actor engine on the demo model and prints one JSON line per request.
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve::testing;

namespace {

std::pair<std::string, int> run_cli(const std::string& args, bool merge_stderr = false) {
  auto r = run_command(executable().string() + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null"));
  return {r.out, r.status};
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      out.push_back(nlohmann::json::parse(line));
  return out;
}

} // namespace

TEST_CASE("generate --prompts runs every line through the engine at once", "[engine][cli]") {
  std::ifstream fx_in(source_dir() / "tests/fixtures/demo/hf_greedy.json");
  const auto fx = nlohmann::json::parse(fx_in);
  temp_dir dir;
  auto file = dir.path() / "prompts.jsonl";
  {
    std::ofstream out(file);
    // Every fixture case twice: as text and as ids, greedy through EOS.
    for (const auto& c : fx["cases"]) {
      out << nlohmann::json{{"prompt", c["prompt"]}, {"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}}.dump()
          << "\n";
      out << nlohmann::json{{"prompt_ids", c["prompt_ids"]}, {"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}}
                 .dump()
          << "\n";
    }
    out << "\n"; // blank lines are skipped
    out << R"({"prompt": "A wise man once said", "max_tokens": 8, "temperature": 0.9, "seed": 5, "n": 3})" << "\n";
    out << R"({"prompt": "The meaning of life is", "max_tokens": 40, "temperature": 0, "stop": "Mencken", "ignore_eos": true})"
        << "\n";
  }
  auto [out, status] = run_cli("generate --model " + (source_dir() / "models/demo").string() + " --prompts " +
                               file.string() + " --threads 2 --max-num-seqs 8 --max-num-batched-tokens 64");
  INFO(out);
  REQUIRE(status == 0);
  auto lines = json_lines(out);
  const size_t cases = fx["cases"].size();
  REQUIRE(lines.size() == 2 * cases + 2);
  for (size_t i = 0; i < lines.size(); ++i)
    CHECK(lines[i]["index"] == i);
  for (size_t k = 0; k < cases; ++k) {
    auto expected = fx["cases"][k]["greedy_ids"].get<std::vector<int>>();
    expected.resize(20);
    for (size_t line : {2 * k, 2 * k + 1}) {
      CHECK(lines[line]["token_ids"].get<std::vector<int>>() == expected);
      CHECK(lines[line]["finish_reason"] == "length");
    }
    CHECK(lines[2 * k]["text"] == lines[2 * k + 1]["text"]);
  }
  const auto& multi = lines[2 * cases];
  REQUIRE(multi["choices"].size() == 3);
  CHECK(multi["choices"][0]["token_ids"] == multi["token_ids"]);
  CHECK(multi["choices"][1]["token_ids"] != multi["choices"][2]["token_ids"]);
  const auto& stopped = lines[2 * cases + 1];
  CHECK(stopped["finish_reason"] == "stop");
  std::string full = fx["cases"][0]["greedy_text"];
  CHECK(stopped["text"] == full.substr(0, full.find("Mencken")));
}

TEST_CASE("generate --prompts names the bad line", "[engine][cli]") {
  temp_dir dir;
  auto file = dir.path() / "prompts.jsonl";
  std::ofstream(file) << R"({"prompt_ids": [1, 2]})" << "\n" << R"({"max_tokens": 3})" << "\n";
  auto [out, status] = run_cli("generate --model " + (source_dir() / "models/demo").string() + " --prompts " +
                                   file.string(),
                               true);
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("line 2") && Catch::Contains("prompt"));
}
