// actorserve's chat templates against the reference: Python's jinja2 configured exactly as
// transformers configures it (scripts/chat_template_reference.py), run live here, plus the
// committed expectations the same script produced (so the suite proves something even
// without Python). A missing Python or jinja2 is a failure, never a skip.
#include "model/byte_tokenizer.hpp"
#include "tests/chat_template/reference_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace actorserve::testing::chat;
namespace fs = std::filesystem;

namespace {

/// Tokenizer folders from scripts/assets.d/tokenizers.sh whose tokenizer_config.json carries
/// a chat template (llama2's has none; see the test below).
const std::vector<std::string> real_tokenizers = {"qwen3", "llama3", "deepseek_v3", "mistral_nemo"};

/// The conversations of expected_real.json (scripts/chat_template_reference.py cases --only).
const std::vector<std::string> committed_conversations = {"multi_turn", "tools_defined", "tool_call_object_args",
                                                          "bad_tool_call_id"};

fs::path tokenizer_folder(const std::string& name) {
  fs::path dir = actorserve::testing::cache_dir() / "tokenizers" / name;
  INFO("run scripts/fetch-test-assets.sh to fetch " << dir);
  REQUIRE(fs::exists(dir / "tokenizer_config.json"));
  return dir;
}

struct tally {
  int compared = 0;
  int rendered = 0;
  std::vector<std::string> failures;
};

void compare_cases(const std::string& label, const ojson& reference, const ojson& mine, tally& t) {
  INFO(label);
  REQUIRE(reference.is_array());
  REQUIRE(mine.is_array());
  REQUIRE(reference.size() == mine.size());
  for (std::size_t i = 0; i < reference.size(); ++i) {
    ++t.compared;
    t.rendered += reference[i].contains("output") ? 1 : 0;
    CHECK(reference[i]["conversation"] == mine[i]["conversation"]);
    std::string why = mismatch(reference[i], mine[i]);
    if (!why.empty())
      t.failures.push_back(label + " / " + reference[i]["conversation"].get<std::string>() +
                           " / add_generation_prompt=" + reference[i]["add_generation_prompt"].dump() + ": " + why);
  }
}

void report(const tally& t) {
  for (std::size_t i = 0; i < t.failures.size() && i < 20; ++i)
    FAIL_CHECK(t.failures[i]);
  CHECK(t.failures.empty());
}

} // namespace

TEST_CASE("chat templates of real models render exactly as transformers' jinja2 renders them", "[chat_template]") {
  use_utc();
  actorserve::testing::temp_dir made;
  fs::path byte_tokenizer = made.path() / "make_model_byte_tokenizer";
  fs::create_directories(byte_tokenizer);
  std::ofstream(byte_tokenizer / "tokenizer_config.json") << actorserve::byte_tokenizer_config_json(2048);

  std::vector<std::pair<std::string, fs::path>> sources;
  for (const auto& name : real_tokenizers)
    sources.emplace_back(name, tokenizer_folder(name));
  sources.emplace_back("demo", actorserve::testing::source_dir() / "models" / "demo");
  sources.emplace_back("make-model byte tokenizer", byte_tokenizer);

  ojson conversations = read_json(fixtures() / "conversations.json");
  std::string arguments = "cases --conversations " + quoted(fixtures() / "conversations.json");
  for (const auto& [_, folder] : sources)
    arguments += " " + quoted(folder);
  ojson reference = run_reference(arguments);

  tally all;
  for (const auto& [name, folder] : sources) {
    tally one;
    compare_cases(name, reference[folder.filename().string()], render_cases(folder, conversations), one);
    INFO(name << ": the reference rendered " << one.rendered << " of " << one.compared << " cases");
    // Most conversations render on every template; a handful fail by design (both sides).
    CHECK(one.rendered >= one.compared / 2);
    all.compared += one.compared;
    all.failures.insert(all.failures.end(), one.failures.begin(), one.failures.end());
  }
  CHECK(all.compared == static_cast<int>(sources.size() * conversations.size() * 2));
  report(all);
}

TEST_CASE("a tokenizer without a chat template is refused, as transformers refuses it", "[chat_template]") {
  fs::path llama2 = tokenizer_folder("llama2");
  ojson reference = run_reference("cases --conversations " + quoted(fixtures() / "conversations.json") + " " + quoted(llama2));
  CHECK(reference["llama2"].contains("error"));
  CHECK_THROWS_WITH(actorserve::chat_template::load_chat_template_config(llama2),
                    Catch::Contains("no chat template"));
}

TEST_CASE("every template feature renders as jinja2 renders it", "[chat_template]") {
  use_utc();
  auto cases = parse_features(fixtures() / "features.txt");
  REQUIRE(cases.size() >= 200);
  ojson reference = run_reference("features --features " + quoted(fixtures() / "features.txt") + " --context " +
                                  quoted(fixtures() / "feature_context.json"));
  ojson mine = render_features(cases, read_json(fixtures() / "feature_context.json"));
  tally t;
  for (const auto& c : cases) {
    ++t.compared;
    REQUIRE(reference.contains(c.name));
    t.rendered += reference[c.name].contains("output") ? 1 : 0;
    std::string why = mismatch(reference[c.name], mine[c.name]);
    if (!why.empty())
      t.failures.push_back(c.name + ": " + why);
  }
  INFO("features rendered by the reference: " << t.rendered << " of " << t.compared);
  CHECK(t.rendered >= t.compared / 2);
  report(t);
}

TEST_CASE("committed expectations hold without Python", "[chat_template]") {
  use_utc();
  SECTION("features") {
    auto cases = parse_features(fixtures() / "features.txt");
    ojson expected = read_json(fixtures() / "expected_features.json");
    INFO("regenerate with: python3 scripts/chat_template_reference.py features --features "
         "tests/fixtures/chat_template/features.txt --context tests/fixtures/chat_template/feature_context.json "
         "--now 1700000000 --out tests/fixtures/chat_template/expected_features.json (TZ=UTC)");
    REQUIRE(expected.size() == cases.size());
    ojson mine = render_features(cases, read_json(fixtures() / "feature_context.json"));
    tally t;
    for (const auto& c : cases) {
      REQUIRE(expected.contains(c.name));
      std::string why = mismatch(expected[c.name], mine[c.name]);
      if (!why.empty())
        t.failures.push_back(c.name + ": " + why);
    }
    report(t);
  }
  SECTION("real templates") {
    ojson expected = read_json(fixtures() / "expected_real.json");
    ojson conversations = read_json(fixtures() / "conversations.json");
    std::vector<std::pair<std::string, fs::path>> sources;
    for (const auto& name : real_tokenizers)
      sources.emplace_back(name, tokenizer_folder(name));
    sources.emplace_back("demo", actorserve::testing::source_dir() / "models" / "demo");
    tally t;
    for (const auto& [name, folder] : sources) {
      REQUIRE(expected.contains(name));
      compare_cases(name, expected[name], render_cases(folder, conversations, committed_conversations), t);
    }
    CHECK(t.compared == static_cast<int>(sources.size() * committed_conversations.size() * 2));
    report(t);
  }
}

TEST_CASE("the Python reference still produces the committed expectations", "[chat_template]") {
  // If this fails while the live comparisons pass, jinja2 changed behaviour: regenerate the
  // expectations (commands in the test above) after checking the difference.
  use_utc();
  ojson reference = run_reference("features --features " + quoted(fixtures() / "features.txt") + " --context " +
                                  quoted(fixtures() / "feature_context.json"));
  ojson expected = read_json(fixtures() / "expected_features.json");
  for (const auto& [name, outcome] : expected.items()) {
    INFO(name);
    CHECK(reference[name] == outcome);
  }
}
