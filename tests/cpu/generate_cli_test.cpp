// `actorserve generate` end to end: the binary on the demo model prints HF's greedy ids as JSON,
// and refuses bad input with a message.
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

using namespace actorserve::testing;

namespace {

// stdout + stderr of a command, and its exit status.
std::pair<std::string, int> run(const std::string& args) {
  auto r = run_command(executable().string() + " " + args + " 2>&1");
  return {r.out, r.status};
}

} // namespace

TEST_CASE("actorserve generate prints the greedy ids of transformers") {
  std::ifstream in(source_dir() / "tests/fixtures/demo/hf_greedy.json");
  const auto fx = nlohmann::json::parse(in);
  const auto& c = fx.at("cases").at(0);
  std::string ids;
  for (int id : c.at("prompt_ids"))
    ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const auto [out, status] = run("generate --model " + (source_dir() / "models/demo").string() + " --prompt-ids " +
                                 ids + " --max-tokens 24 --temperature 0 --ignore-eos --chunk-size 4 --block-size 8");
  INFO(out);
  REQUIRE(status == 0);
  const auto j = nlohmann::json::parse(out);
  const auto expected = c.at("greedy_ids").get<std::vector<int>>();
  CHECK(j.at("token_ids").get<std::vector<int>>() == std::vector<int>(expected.begin(), expected.begin() + 24));
  CHECK(j.at("finish_reason") == "length");
  CHECK(j.at("logprobs").size() == 24);
}

TEST_CASE("actorserve generate refuses bad input with a message") {
  const std::string model = " --model " + (source_dir() / "models/demo").string();
  auto [out, status] = run("generate" + model + " --prompt-ids 1,x,3");
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("'x' is not a token id"));
  std::tie(out, status) = run("generate" + model + " --prompt-ids 1,99999");
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("outside the vocabulary"));
  std::tie(out, status) = run("generate --model /nonexistent --prompt-ids 1");
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("config.json"));
}
