// Tool-call parsers (hermes, llama3_json, mistral): whole outputs, the same outputs fed in
// every possible split (as a stream delivers them), malformed calls, several calls.
#include "gateway/tool_parser.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <regex>

using namespace actorserve::gateway;

namespace {

struct outcome {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls; // name, arguments
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  os << "content=" << Catch::Detail::stringify(o.content) << " calls=[";
  for (const auto& [n, a] : o.calls)
    os << n << a << " ";
  return os << "]";
}

outcome whole(tool_parser_kind kind, std::string_view text) {
  tool_parse_result r = parse_tool_calls(kind, text);
  outcome o{r.content, {}};
  for (const auto& c : r.calls)
    o.calls.emplace_back(c.name, c.arguments);
  return o;
}

// Feeds `text` in pieces of `piece` bytes; also checks that content released before a call is
// never taken back (it is only ever appended).
outcome streamed(tool_parser_kind kind, std::string_view text, size_t piece) {
  tool_call_parser parser(kind);
  outcome o;
  auto take = [&](tool_parse_step s) {
    o.content += s.content;
    for (const auto& c : s.calls)
      o.calls.emplace_back(c.name, c.arguments);
  };
  for (size_t at = 0; at < text.size(); at += piece)
    take(parser.add(text.substr(at, piece)));
  take(parser.finish());
  CHECK(parser.num_calls() == int32_t(o.calls.size()));
  return o;
}

// The whole text and every piece size give the same outcome.
void check(tool_parser_kind kind, const std::string& text, const outcome& expected) {
  INFO(tool_parser_name(kind) << ": " << text);
  CHECK(whole(kind, text) == expected);
  for (size_t piece : {1, 2, 3, 5, 7, 13})
    CHECK(streamed(kind, text, piece) == expected);
}

using calls = std::vector<std::pair<std::string, std::string>>;

} // namespace

TEST_CASE("hermes: <tool_call> blocks become calls, the rest is content", "[gateway][tools]") {
  const auto k = tool_parser_kind::hermes;
  check(k, R"(<tool_call>
{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Paris"}}
</tool_call>)",
        {"", calls{{"get_weather", R"({"unit":"celsius","city":"Paris"})"}}});
  // Content before, whitespace between and after; two calls; arguments as a JSON string.
  check(k, "Let me check both.\n\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2.5, null]}}\n</tool_call>\n"
           "<tool_call>\n{\"arguments\": \"{\\\"q\\\": \\\"<b>\\\"}\", \"name\": \"b\"}\n</tool_call>\n",
        {"Let me check both.", calls{{"a", R"({"x":[1,2.5,null]})"}, {"b", R"({"q":"<b>"})"}}});
  // No arguments: {}. A last call without its closing tag still counts (as in vLLM).
  check(k, "<tool_call>{\"name\": \"now\"}</tool_call><tool_call>{\"name\": \"later\", \"arguments\": {}}",
        {"", calls{{"now", "{}"}, {"later", "{}"}}});
  // Strings holding braces and the closing tag's look-alikes do not confuse it.
  check(k, R"(<tool_call>{"name": "echo", "arguments": {"s": "} ] \" {"}}</tool_call>)",
        {"", calls{{"echo", R"({"s":"} ] \" {"})"}}});
  // No calls: text passes through exactly, whitespace included.
  check(k, "  Plain <b>answer</b> with a < sign and <tool_ no call.\n\n", {"  Plain <b>answer</b> with a < sign and <tool_ no call.\n\n", {}});
}

TEST_CASE("hermes: malformed calls are returned as content", "[gateway][tools]") {
  const auto k = tool_parser_kind::hermes;
  const std::string bad_json = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>";
  check(k, bad_json, {bad_json, {}});
  const std::string no_name = "<tool_call>{\"arguments\": {}}</tool_call>";
  check(k, no_name, {no_name, {}});
  const std::string args_not_object = "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>";
  check(k, args_not_object, {args_not_object, {}});
  const std::string unfinished = "Sure: <tool_call>{\"name\": \"f\", \"argu";
  check(k, unfinished, {unfinished, {}});
  // One good call and one bad: the good one is a call, the bad one text.
  check(k, "<tool_call>{\"name\": \"f\"}</tool_call>\n<tool_call>{oops}</tool_call>",
        {"<tool_call>{oops}</tool_call>", calls{{"f", "{}"}}});
  // Invalid UTF-8 inside the JSON is malformed too (never an exception).
  const std::string bad_utf8 = "<tool_call>{\"name\": \"f\xff\"}</tool_call>";
  check(k, bad_utf8, {bad_utf8, {}});
}

TEST_CASE("hermes: streaming holds back only what may be a marker or a call", "[gateway][tools]") {
  tool_call_parser p(tool_parser_kind::hermes);
  CHECK(p.add("Hello").content == "Hello");
  CHECK(p.add(" wor").content == " wor");
  CHECK(p.add("ld <tool").content == "ld"); // " <tool" may open a call
  auto s = p.add("_call>{\"name\": \"f\", ");
  CHECK(s.content.empty());
  CHECK(s.calls.empty());
  s = p.add("\"arguments\": {\"a\": 1}}</tool_call>");
  CHECK(s.content.empty());
  REQUIRE(s.calls.size() == 1);
  CHECK(s.calls[0].name == "f");
  CHECK(s.calls[0].arguments == R"({"a":1})");
  CHECK_THAT(s.calls[0].id, Catch::Matches("chatcmpl-tool-[0-9a-f]{32}"));
  s = p.finish();
  CHECK(s.content.empty()); // the space before the call is dropped once there are calls
  CHECK(p.num_calls() == 1);
}

TEST_CASE("llama3_json: a JSON call at the start, <|python_tag|> allowed, semicolons between calls", "[gateway][tools]") {
  const auto k = tool_parser_kind::llama3_json;
  check(k, R"({"name": "get_weather", "parameters": {"unit": "celsius", "city": "Paris"}})",
        {"", calls{{"get_weather", R"({"unit":"celsius","city":"Paris"})"}}});
  check(k, R"(<|python_tag|>{"name": "f", "arguments": {"a": 1}})", {"", calls{{"f", R"({"a":1})"}}});
  check(k, "\n {\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"b\": true}}\n",
        {"", calls{{"f", "{}"}, {"g", R"({"b":true})"}}});
  // Text after the calls stays content.
  check(k, R"({"name": "f", "parameters": {}} and then some text)", {"and then some text", calls{{"f", "{}"}}});
}

TEST_CASE("llama3_json: anything else is content", "[gateway][tools]") {
  const auto k = tool_parser_kind::llama3_json;
  check(k, "The answer is {\"name\": \"f\", \"parameters\": {}}", {"The answer is {\"name\": \"f\", \"parameters\": {}}", {}});
  check(k, R"({"answer": 42})", {R"({"answer": 42})", {}});      // JSON, but not a call
  check(k, R"({"name": "f", "parameters": {"a": )", {R"({"name": "f", "parameters": {"a": )", {}}); // cut off
  check(k, R"({"name": "f", "parameters": {"a": 1}]})", {R"({"name": "f", "parameters": {"a": 1}]})", {}});
  check(k, "<|python_tag|>print(1)", {"<|python_tag|>print(1)", {}});
  check(k, "  ", {"  ", {}});
  check(k, "", {"", {}});
}

TEST_CASE("mistral: [TOOL_CALLS] followed by a JSON array of calls", "[gateway][tools]") {
  const auto k = tool_parser_kind::mistral;
  check(k, R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Paris"}}])",
        {"", calls{{"get_weather", R"({"unit":"celsius","city":"Paris"})"}}});
  check(k, R"(Checking. [TOOL_CALLS] [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"n": -1}}])",
        {"Checking.", calls{{"a", "{}"}, {"b", R"({"n":-1})"}}});
  // Malformed: content, marker included.
  const std::string bad = R"([TOOL_CALLS][{"name": "a", "arguments": {}}, {"arguments": {}}])";
  check(k, bad, {bad, {}});
  const std::string cut = R"([TOOL_CALLS][{"name": "a", "argum)";
  check(k, cut, {cut, {}});
  check(k, "[TOOL_CALLS] not json", {"[TOOL_CALLS] not json", {}});
  // An unbalanced bracket ends the failed call there: a later call is still read.
  check(k, R"([TOOL_CALLS][} [TOOL_CALLS][{"name": "a", "arguments": {}}])", {"[TOOL_CALLS][}", calls{{"a", "{}"}}});
  check(k, "a [TOOL_ b", {"a [TOOL_ b", {}});

  auto id = parse_tool_calls(k, R"([TOOL_CALLS][{"name": "a", "arguments": {}}])").calls.at(0).id;
  CHECK(std::regex_match(id, std::regex("[A-Za-z0-9]{9}"))); // Mistral's templates require it
  CHECK(tool_parser_needs_special_tokens(k));
  CHECK_FALSE(tool_parser_needs_special_tokens(tool_parser_kind::hermes));
}

TEST_CASE("mistral v11: [TOOL_CALLS]name[ARGS]{arguments}, the marker repeated per call", "[gateway][tools]") {
  const auto k = tool_parser_kind::mistral;
  check(k, R"([TOOL_CALLS]get_weather[ARGS]{"unit": "celsius", "city": "Paris"})",
        {"", calls{{"get_weather", R"({"unit":"celsius","city":"Paris"})"}}});
  check(k, R"(Let me check. [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"tz": "CET"})",
        {"Let me check.", calls{{"get_weather", R"({"city":"Paris"})"}, {"get_time", R"({"tz":"CET"})"}}});
  check(k, "[TOOL_CALLS]a.b-c_1[ARGS] {}\n[TOOL_CALLS]x[ARGS]{\"n\": [1, {\"m\": \"[ARGS]\"}]}\n",
        {"", calls{{"a.b-c_1", "{}"}, {"x", R"({"n":[1,{"m":"[ARGS]"}]})"}}});
  // Bad JSON, cut off, arguments that are not an object, no [ARGS]: the text stays content.
  const std::string bad = R"([TOOL_CALLS]get_weather[ARGS]{"city": })";
  check(k, bad, {bad, {}});
  const std::string cut = R"([TOOL_CALLS]get_weather[ARGS]{"city": "Par)";
  check(k, cut, {cut, {}});
  check(k, "[TOOL_CALLS]f[ARGS][1, 2]", {"[TOOL_CALLS]f[ARGS][1, 2]", {}});
  check(k, "[TOOL_CALLS]f[ARGS]nope", {"[TOOL_CALLS]f[ARGS]nope", {}});
  check(k, "[TOOL_CALLS]get_weather", {"[TOOL_CALLS]get_weather", {}});
  check(k, "[TOOL_CALLS]get weather[ARGS]{}", {"[TOOL_CALLS]get weather[ARGS]{}", {}});
  check(k, "[TOOL_CALLS]f[ARG]{}", {"[TOOL_CALLS]f[ARG]{}", {}});
  // A bad call does not hide a good one after it.
  check(k, R"([TOOL_CALLS]f[ARGS]{"a": ]}[TOOL_CALLS]g[ARGS]{"b": 1})",
        {R"([TOOL_CALLS]f[ARGS]{"a": ]})", calls{{"g", R"({"b":1})"}}});
  check(k, R"([TOOL_CALLS]f[ARGS]{"a" 1} [TOOL_CALLS]g[ARGS]{})", {R"([TOOL_CALLS]f[ARGS]{"a" 1})", calls{{"g", "{}"}}});
  // Both forms in one output.
  check(k, R"([TOOL_CALLS][{"name": "a", "arguments": {}}][TOOL_CALLS]b[ARGS]{})", {"", calls{{"a", "{}"}, {"b", "{}"}}});
}

TEST_CASE("mistral v11: markers split at every byte across two stream pieces", "[gateway][tools]") {
  const auto k = tool_parser_kind::mistral;
  const std::string text = R"(Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"tz": "CET"})";
  const outcome expected{"Sure.", calls{{"get_weather", R"({"city":"Paris"})"}, {"get_time", R"({"tz":"CET"})"}}};
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    INFO("cut after " << cut << " bytes");
    tool_call_parser parser(k);
    outcome o;
    for (tool_parse_step s : {parser.add(text.substr(0, cut)), parser.add(text.substr(cut)), parser.finish()}) {
      o.content += s.content;
      for (const auto& c : s.calls)
        o.calls.emplace_back(c.name, c.arguments);
    }
    CHECK(o == expected);
  }
  // A call is released as soon as its arguments close, before the output ends.
  tool_call_parser parser(k);
  CHECK(parser.add("[TOOL_CALLS]get_w").calls.empty());
  CHECK(parser.add("eather[AR").calls.empty());
  tool_parse_step s = parser.add("GS]{\"city\": \"Paris\"}");
  REQUIRE(s.calls.size() == 1);
  CHECK(s.calls[0].name == "get_weather");
  CHECK(std::regex_match(s.calls[0].id, std::regex("[A-Za-z0-9]{9}")));
  CHECK(s.content.empty());
}

TEST_CASE("tool parser names", "[gateway][tools]") {
  for (const char* name : {"hermes", "llama3_json", "mistral"}) {
    auto kind = tool_parser_from_name(name);
    REQUIRE(kind);
    CHECK(std::string(tool_parser_name(*kind)) == name);
  }
  CHECK_FALSE(tool_parser_from_name("pythonic"));
}

TEST_CASE("a long call streamed in small pieces costs linear time", "[gateway][tools]") {
  // 400 KB of arguments in 2-byte pieces: rescanning the call from its start on every piece
  // would be ~4e10 byte visits.
  const std::string value(400000, 'x');
  const std::string args = "{\"text\": \"" + value + "\"}";
  for (auto [kind, text] : {std::pair{tool_parser_kind::hermes, "<tool_call>{\"name\": \"w\", \"arguments\": " + args + "}</tool_call>"},
                            std::pair{tool_parser_kind::llama3_json, "{\"name\": \"w\", \"parameters\": " + args + "}"},
                            std::pair{tool_parser_kind::mistral, "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": " + args + "}]"},
                            std::pair{tool_parser_kind::mistral, "[TOOL_CALLS]w[ARGS]" + args}}) {
    INFO(tool_parser_name(kind));
    const auto t0 = std::chrono::steady_clock::now();
    const outcome o = streamed(kind, text, 2);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(o.calls.size() == 1);
    CHECK(o.calls[0].second == "{\"text\":\"" + value + "\"}");
    CHECK(seconds < 2.0); // ~0.05 s unloaded
  }
}
