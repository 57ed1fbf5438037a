// --reasoning-parser: where the reasoning ends and the content starts, for whole outputs and
// for outputs streamed in pieces cut at every byte (tags and multibyte characters split).
#include "gateway/reasoning_parser.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace actorserve::gateway;

namespace {

struct split_case {
  std::string output;
  std::optional<std::string> reasoning; // nullopt: no reasoning part
  std::string content;
};

// The streamed pieces of one output, concatenated per field.
struct streamed {
  std::string reasoning;
  std::string content;
  bool has_reasoning = false;
};

streamed stream(reasoning_parser_kind kind, bool prompt_opened, const std::vector<std::string>& pieces) {
  reasoning_splitter s(kind, prompt_opened);
  streamed out;
  for (const std::string& piece : pieces) {
    reasoning_step step = s.add(piece);
    out.reasoning += step.reasoning;
    out.content += step.content;
  }
  reasoning_step rest = s.finish();
  out.reasoning += rest.reasoning;
  out.content += rest.content;
  out.has_reasoning = s.has_reasoning();
  return out;
}

// Every way to cut `text` into two pieces, and into three (every pair of cut points), and
// into single bytes: every tag and every multibyte character gets split somewhere.
std::vector<std::vector<std::string>> every_split(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (size_t i = 0; i <= text.size(); ++i) {
    out.push_back({text.substr(0, i), text.substr(i)});
    for (size_t j = i; j <= text.size(); ++j)
      out.push_back({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
  }
  std::vector<std::string> bytes;
  for (char c : text)
    bytes.emplace_back(1, c);
  out.push_back(bytes);
  return out;
}

void check_cases(reasoning_parser_kind kind, bool prompt_opened, const std::vector<split_case>& cases) {
  for (const split_case& c : cases) {
    INFO(reasoning_parser_name(kind) << (prompt_opened ? " (prompt opened <think>)" : "") << ": " << c.output);
    reasoning_result whole = split_reasoning(kind, prompt_opened, c.output);
    CHECK(whole.reasoning == c.reasoning);
    CHECK(whole.content == c.content);
    for (const auto& pieces : every_split(c.output)) {
      INFO("first cut after " << (pieces.empty() ? 0 : pieces[0].size()) << " bytes, " << pieces.size() << " pieces");
      streamed s = stream(kind, prompt_opened, pieces);
      REQUIRE(s.has_reasoning == c.reasoning.has_value());
      REQUIRE(s.reasoning == c.reasoning.value_or(""));
      REQUIRE(s.content == c.content);
    }
  }
}

} // namespace

TEST_CASE("reasoning parser names", "[gateway][reasoning]") {
  CHECK(reasoning_parser_from_name("deepseek_r1") == reasoning_parser_kind::deepseek_r1);
  CHECK(reasoning_parser_from_name("qwen3") == reasoning_parser_kind::qwen3);
  CHECK_FALSE(reasoning_parser_from_name("deepseek"));
  CHECK_FALSE(reasoning_parser_from_name(""));
  CHECK(std::string(reasoning_parser_names()) == "deepseek_r1, qwen3");
  CHECK(std::string(reasoning_parser_name(reasoning_parser_kind::qwen3)) == "qwen3");
}

TEST_CASE("a prompt that ends inside <think> opens the reasoning", "[gateway][reasoning]") {
  CHECK(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
  CHECK(prompt_opens_reasoning("<|Assistant|><think>"));
  CHECK_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n")); // enable_thinking=false
  CHECK_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));
  CHECK_FALSE(prompt_opens_reasoning("What does <think> mean?<|im_end|>\n<|im_start|>assistant\n"));
  CHECK_FALSE(prompt_opens_reasoning(""));
}

TEST_CASE("deepseek_r1: reasoning up to </think>, the rest is content", "[gateway][reasoning]") {
  check_cases(reasoning_parser_kind::deepseek_r1, false,
              {
                  // the usual output of a template that put "<think>\n" in the prompt
                  {"Let me add.\n2 + 2 = 4.\n</think>\n\nThe answer is 4.", "Let me add.\n2 + 2 = 4.", "The answer is 4."},
                  // the model opened the tag itself (older templates)
                  {"<think>\nLet me add.\n</think>\n\nFour.", "Let me add.", "Four."},
                  {"\n<think>x</think>y", "x", "y"},
                  // no </think>: all reasoning (cut off, or the model never closed it)
                  {"Still thinking about it", "Still thinking about it", ""},
                  {"<think>\nStill thinking\n", "Still thinking", ""},
                  // empty reasoning, empty content
                  {"<think></think>Hi", "", "Hi"},
                  {"<think>\n\n</think>\n\nHi", "", "Hi"},
                  {"</think>Hi", "", "Hi"},
                  {"Done.</think>", "Done.", ""},
                  {"", "", ""},
                  // text that only looks like a tag stays where it is
                  {"a < b and </thin k></think>x <think> y", "a < b and </thin k>", "x <think> y"},
                  {"<thinking>?</think>ok", "<thinking>?", "ok"},
                  // multibyte UTF-8 right against the tags
                  {"<think>é中😀</think>😀ü", "é中😀", "😀ü"},
                  {"Ω</think>\n\nλ", "Ω", "λ"},
                  // newlines inside the reasoning and content stay
                  {"a\n\nb\n</think>\nc\n\nd\n", "a\n\nb", "c\n\nd\n"},
              });
}

TEST_CASE("qwen3: reasoning only when the output or the prompt opens <think>", "[gateway][reasoning]") {
  check_cases(reasoning_parser_kind::qwen3, false,
              {
                  {"<think>\nThe user greets me.\n</think>\n\nHello!", "The user greets me.", "Hello!"},
                  {"  <think>x</think>y", "x", "y"},
                  {"<think></think>Hi", "", "Hi"},
                  {"<think>cut off", "cut off", ""},
                  // no tags (enable_thinking=false puts the empty block into the prompt): all content
                  {"Hello there!", std::nullopt, "Hello there!"},
                  {"\n\nHello", std::nullopt, "\n\nHello"},
                  {"", std::nullopt, ""},
                  {"<thinking> is a word", std::nullopt, "<thinking> is a word"},
                  // a </think> that the start of the output did not announce is content: a stream
                  // cannot take back the text it already sent as content
                  {"Hi</think>there", std::nullopt, "Hi</think>there"},
                  {"<think>é中</think>😀", "é中", "😀"},
              });
  // Qwen3-2507 thinking templates end the prompt with "<think>\n": the output starts inside.
  check_cases(reasoning_parser_kind::qwen3, true,
              {
                  {"The user greets me.\n</think>\n\nHello!", "The user greets me.", "Hello!"},
                  {"</think>Hi", "", "Hi"},
                  {"still thinking", "still thinking", ""},
                  {"<think>x</think>y", "x", "y"},
                  {"ü</think>中", "ü", "中"},
              });
}

TEST_CASE("a tag split across pieces releases nothing of itself", "[gateway][reasoning]") {
  reasoning_splitter s(reasoning_parser_kind::deepseek_r1, false);
  reasoning_step a = s.add("<th");
  CHECK(a.reasoning.empty());
  CHECK(a.content.empty());
  reasoning_step b = s.add("ink>Plan</th");
  CHECK(b.reasoning == "Plan");
  CHECK(b.content.empty());
  reasoning_step c = s.add("ink>\n\n");
  CHECK(c.reasoning.empty());
  CHECK(c.content.empty());
  reasoning_step d = s.add("Go");
  CHECK(d.content == "Go");
  reasoning_step e = s.finish();
  CHECK(e.reasoning.empty());
  CHECK(e.content.empty());
  // A held-back prefix that never becomes the tag is released by finish().
  reasoning_splitter t(reasoning_parser_kind::deepseek_r1, false);
  CHECK(t.add("x </thi").reasoning == "x ");
  CHECK(t.finish().reasoning == "</thi");
}
