// Tool calls in chat responses, from scripted engine events (the demo model never calls
// tools): the bytes a client gets, streaming and not, read back the way the OpenAI SDK
// accumulates a stream (content appended; tool_calls by index: the first delta of a call
// carries id, type and name, later ones append to arguments).
#include "chat_stream_helpers.hpp"
#include "gateway/response_assembler.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace actorserve;
using namespace actorserve::gateway;
using namespace actorserve::gateway::test;
using nlohmann::json;

namespace {

assembler_options chat_options(bool stream, std::optional<tool_parser_kind> parser, int32_t n = 1) {
  assembler_options o;
  o.kind = api_kind::chat;
  o.meta = {"chatcmpl-1", 1700000000, "tiny", false};
  o.stream = stream;
  o.n = n;
  o.token_text = [](int32_t t) { return "t" + std::to_string(t); };
  o.tool_parser = parser;
  return o;
}

const std::string hermes_two_calls =
    "I'll look both up.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\", \"city\": "
    "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"Europe/Paris\"}}\n"
    "</tool_call>";

} // namespace

TEST_CASE("tool calls: non-streaming chat gets message.tool_calls and finish_reason tool_calls", "[gateway][tools]") {
  response_assembler a(chat_options(false, tool_parser_kind::hermes));
  json body = json::parse(run(a, {pieces(hermes_two_calls, 4)}));
  const json& choice = body["choices"][0];
  CHECK(choice["finish_reason"] == "tool_calls");
  CHECK(choice["message"]["content"] == "I'll look both up.");
  const json& calls = choice["message"]["tool_calls"];
  REQUIRE(calls.size() == 2);
  CHECK_THAT(calls[0]["id"].get<std::string>(), Catch::Matches("chatcmpl-tool-[0-9a-f]{32}"));
  CHECK(calls[0]["id"] != calls[1]["id"]);
  CHECK(calls[0]["type"] == "function");
  CHECK(calls[0]["function"]["name"] == "get_weather");
  // arguments is a JSON string, the model's keys in the model's order.
  CHECK(calls[0]["function"]["arguments"] == R"({"unit":"celsius","city":"Paris"})");
  CHECK(calls[1]["function"]["name"] == "get_time");
  CHECK(json::parse(calls[1]["function"]["arguments"].get<std::string>()) == json{{"tz", "Europe/Paris"}});

  // Only calls: content is null, as OpenAI sends it.
  response_assembler only(chat_options(false, tool_parser_kind::hermes));
  json b = json::parse(run(only, {{"<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"}}));
  CHECK(b["choices"][0]["message"]["content"].is_null());
  CHECK(b["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}");
}

TEST_CASE("tool calls: a stream carries content deltas, then each call's header and arguments", "[gateway][tools]") {
  for (size_t size : {1, 3, 8, 1000}) {
    INFO("pieces of " << size);
    response_assembler a(chat_options(true, tool_parser_kind::hermes));
    const std::string sse = run(a, {pieces(hermes_two_calls, size)});
    CHECK(sse.find("<tool_call>") == std::string::npos); // markup never reaches the client
    auto acc = accumulate(sse, 1);
    CHECK(acc[0].content == "I'll look both up.");
    CHECK(acc[0].finish_reason == "tool_calls");
    REQUIRE(acc[0].tool_calls.size() == 2);
    CHECK(acc[0].tool_calls[0]["function"]["name"] == "get_weather");
    CHECK(acc[0].tool_calls[0]["function"]["arguments"] == R"({"unit":"celsius","city":"Paris"})");
    CHECK(acc[0].tool_calls[1]["function"]["name"] == "get_time");
    CHECK_THAT(acc[0].tool_calls[1]["id"].get<std::string>(), Catch::Matches("chatcmpl-tool-[0-9a-f]{32}"));
  }
}

TEST_CASE("tool calls: streaming and non-streaming agree, choice by choice", "[gateway][tools]") {
  // n = 2: one choice calls a tool, the other answers in text that merely mentions a marker.
  const std::string mistral_call = "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": 1}}]";
  const std::string text = "No tool needed: [TOOL_CALLS is not a call. 3";
  response_assembler s(chat_options(true, tool_parser_kind::mistral, 2));
  auto acc = accumulate(run(s, {pieces(mistral_call, 5), pieces(text, 2)}), 2);
  response_assembler w(chat_options(false, tool_parser_kind::mistral, 2));
  json body = json::parse(run(w, {pieces(mistral_call, 5), pieces(text, 2)}));
  for (size_t i = 0; i < 2; ++i) {
    const json& message = body["choices"][i]["message"];
    CHECK(acc[i].finish_reason == body["choices"][i]["finish_reason"]);
    CHECK(acc[i].content == (message["content"].is_null() ? "" : message["content"].get<std::string>()));
    REQUIRE(acc[i].tool_calls.size() == message["tool_calls"].size());
    for (size_t k = 0; k < acc[i].tool_calls.size(); ++k) {
      CHECK(acc[i].tool_calls[k]["function"] == message["tool_calls"][k]["function"]);
      CHECK_THAT(acc[i].tool_calls[k]["id"].get<std::string>(), Catch::Matches("[A-Za-z0-9]{9}"));
    }
  }
  CHECK(body["choices"][0]["finish_reason"] == "tool_calls");
  CHECK(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == R"({"b":2,"a":1})");
  CHECK(body["choices"][1]["finish_reason"] == "stop");
  CHECK(body["choices"][1]["message"]["content"] == text);
  CHECK(body["choices"][1]["message"]["tool_calls"].empty());
}

TEST_CASE("tool calls: malformed tool JSON comes back as plain content", "[gateway][tools]") {
  const std::string bad = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"\n</tool_call>";
  response_assembler s(chat_options(true, tool_parser_kind::hermes));
  const std::string sse = run(s, {pieces(bad, 3)});
  auto acc = accumulate(sse, 1);
  CHECK(acc[0].content == bad);
  CHECK(acc[0].tool_calls.empty());
  CHECK(acc[0].finish_reason == "stop");
  response_assembler w(chat_options(false, tool_parser_kind::hermes));
  json body = json::parse(run(w, {pieces(bad, 3)}));
  CHECK(body["choices"][0]["message"]["content"] == bad);
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  // Cut off by max_tokens inside a call: the text, finish_reason length.
  response_assembler cut(chat_options(true, tool_parser_kind::llama3_json));
  auto c = accumulate(run(cut, {pieces("{\"name\": \"f\", \"parameters\": {\"x\": ", 4)}, finish_reason::length), 1);
  CHECK(c[0].content == "{\"name\": \"f\", \"parameters\": {\"x\": ");
  CHECK(c[0].finish_reason == "length");
}

TEST_CASE("tool calls: without a parser the same output is plain content", "[gateway][tools]") {
  response_assembler a(chat_options(false, std::nullopt));
  json body = json::parse(run(a, {pieces(hermes_two_calls, 7)}));
  CHECK(body["choices"][0]["message"]["content"] == hermes_two_calls);
  CHECK(body["choices"][0]["message"]["tool_calls"].empty());
  CHECK(body["choices"][0]["finish_reason"] == "stop");
}
