// --reasoning-parser in chat responses, from scripted engine events: message.reasoning_content
// and .reasoning next to content when not streamed; deltas with reasoning_content and
// reasoning, then content, when streamed; both modes equal; tool calls only in the content;
// completions, logprobs and usage untouched.
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

assembler_options reasoning_options(bool stream, std::optional<reasoning_parser_kind> parser, int32_t n = 1) {
  assembler_options o;
  o.kind = api_kind::chat;
  o.meta.id = "chatcmpl-1";
  o.meta.created = 1700000000;
  o.meta.model = "tiny";
  o.stream = stream;
  o.n = n;
  o.token_text = [](int32_t t) { return "t" + std::to_string(t); };
  o.reasoning_parser = parser;
  return o;
}

const std::string r1_output = "<think>\nThe user wants 2 + 2. That is 4 (vier, 四).\n</think>\n\nThe answer is 4.";

// A field of a non-streamed message as the SDK accumulates it: null reads as "".
std::string text_of(const json& field) { return field.is_null() ? "" : field.get<std::string>(); }

} // namespace

TEST_CASE("reasoning: non-streaming chat gets reasoning_content and reasoning next to content", "[gateway][reasoning]") {
  response_assembler a(reasoning_options(false, reasoning_parser_kind::deepseek_r1));
  json body = json::parse(run(a, {pieces(r1_output, 4)}));
  const json& message = body["choices"][0]["message"];
  CHECK(message["reasoning_content"] == "The user wants 2 + 2. That is 4 (vier, 四).");
  CHECK(message["reasoning"] == message["reasoning_content"]);
  CHECK(message["content"] == "The answer is 4.");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  // usage counts every generated token, the reasoning's included
  CHECK(body["usage"]["completion_tokens"] == pieces(r1_output, 4).size());

  // No </think>: all reasoning, content null (as vLLM sends it).
  response_assembler cut(reasoning_options(false, reasoning_parser_kind::deepseek_r1));
  json b = json::parse(run(cut, {{"Let me think", " more"}}, finish_reason::length));
  CHECK(b["choices"][0]["message"]["reasoning_content"] == "Let me think more");
  CHECK(b["choices"][0]["message"]["content"].is_null());
  CHECK(b["choices"][0]["finish_reason"] == "length");

  // qwen3 without tags: all content, the reasoning fields null.
  response_assembler plain(reasoning_options(false, reasoning_parser_kind::qwen3));
  json c = json::parse(run(plain, {{"Hello", " there"}}));
  CHECK(c["choices"][0]["message"]["content"] == "Hello there");
  CHECK(c["choices"][0]["message"]["reasoning_content"].is_null());
  CHECK(c["choices"][0]["message"]["reasoning"].is_null());

  // Without --reasoning-parser the fields are absent and the tags are content.
  response_assembler none(reasoning_options(false, std::nullopt));
  json d = json::parse(run(none, {pieces(r1_output, 4)}));
  CHECK(d["choices"][0]["message"]["content"] == r1_output);
  CHECK_FALSE(d["choices"][0]["message"].contains("reasoning_content"));
  CHECK_FALSE(d["choices"][0]["message"].contains("reasoning"));
}

TEST_CASE("reasoning: a stream carries reasoning deltas, then content deltas", "[gateway][reasoning]") {
  for (size_t size : {1, 2, 3, 5, 8, 1000}) {
    INFO("pieces of " << size);
    response_assembler a(reasoning_options(true, reasoning_parser_kind::deepseek_r1));
    const std::string sse = run(a, {pieces(r1_output, size)});
    CHECK(sse.find("think>") == std::string::npos); // no tag, nor a tag's fragment, reaches the client
    CHECK(sse.find("</") == std::string::npos);
    CHECK(sse.find("<th") == std::string::npos);
    auto acc = accumulate(sse, 1);
    CHECK(acc[0].reasoning == "The user wants 2 + 2. That is 4 (vier, 四).");
    CHECK(acc[0].content == "The answer is 4.");
    CHECK(acc[0].finish_reason == "stop");
    CHECK(acc[0].reasoning_chunks > 0);
    // every reasoning delta comes before the first content delta
    const size_t last_reasoning = sse.rfind("\"reasoning_content\"");
    const size_t first_content = sse.find("\"content\":\"T");
    CHECK(last_reasoning < first_content);
  }
}

TEST_CASE("reasoning: streamed and non-streamed fields are equal for every cut and both parsers",
          "[gateway][reasoning]") {
  const std::vector<std::string> outputs = {
      r1_output,
      "no tags at all, é",
      "<think>only an open tag",
      "only a close tag</think>\n\nafter",
      "<think></think>empty reasoning",
      "<think>ü中</think>😀",
      "",
  };
  for (auto kind : {reasoning_parser_kind::deepseek_r1, reasoning_parser_kind::qwen3}) {
    for (bool opened : {false, true}) {
      for (const std::string& output : outputs) {
        for (size_t size = 1; size <= output.size() + 1; ++size) {
          INFO(reasoning_parser_name(kind) << (opened ? " opened" : "") << ", pieces of " << size << ": " << output);
          const script events = {output.empty() ? std::vector<std::string>{""} : pieces(output, size)};
          auto so = reasoning_options(true, kind);
          so.prompt_opens_reasoning = opened;
          response_assembler s(so);
          auto acc = accumulate(run(s, events), 1);
          auto wo = reasoning_options(false, kind);
          wo.prompt_opens_reasoning = opened;
          response_assembler w(wo);
          json message = json::parse(run(w, events))["choices"][0]["message"];
          REQUIRE(acc[0].reasoning == text_of(message["reasoning_content"]));
          REQUIRE(acc[0].content == text_of(message["content"]));
        }
      }
    }
  }
}

TEST_CASE("reasoning: n > 1 splits each choice on its own", "[gateway][reasoning]") {
  const script outputs = {pieces("<think>a</think>A", 3), pieces("no reasoning yet", 2), pieces("<think>b", 1)};
  response_assembler s(reasoning_options(true, reasoning_parser_kind::qwen3, 3));
  auto acc = accumulate(run(s, outputs), 3);
  response_assembler w(reasoning_options(false, reasoning_parser_kind::qwen3, 3));
  json body = json::parse(run(w, outputs));
  CHECK(acc[0].reasoning == "a");
  CHECK(acc[0].content == "A");
  CHECK(acc[1].reasoning.empty());
  CHECK(acc[1].content == "no reasoning yet");
  CHECK(acc[2].reasoning == "b");
  CHECK(acc[2].content.empty());
  CHECK(body["choices"][0]["message"]["reasoning_content"] == "a");
  CHECK(body["choices"][1]["message"]["reasoning_content"].is_null());
  CHECK(body["choices"][1]["message"]["content"] == "no reasoning yet");
  CHECK(body["choices"][2]["message"]["reasoning_content"] == "b");
  CHECK(body["choices"][2]["message"]["content"].is_null());
}

TEST_CASE("reasoning: the tool parser sees only the content", "[gateway][reasoning][tools]") {
  // A call written while thinking is not a call; the one after </think> is.
  const std::string output =
      "<think>\nI could write <tool_call>{\"name\": \"draft\", \"arguments\": {}}</tool_call> here.\n</think>\n\n"
      "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  const std::string reasoning = "I could write <tool_call>{\"name\": \"draft\", \"arguments\": {}}</tool_call> here.";
  for (size_t size : {1, 4, 1000}) {
    INFO("pieces of " << size);
    auto so = reasoning_options(true, reasoning_parser_kind::qwen3);
    so.tool_parser = tool_parser_kind::hermes;
    response_assembler s(so);
    auto acc = accumulate(run(s, {pieces(output, size)}), 1);
    CHECK(acc[0].reasoning == reasoning);
    CHECK(acc[0].content == "Checking.");
    REQUIRE(acc[0].tool_calls.size() == 1);
    CHECK(acc[0].tool_calls[0]["function"]["name"] == "get_weather");
    CHECK(acc[0].finish_reason == "tool_calls");

    auto wo = reasoning_options(false, reasoning_parser_kind::qwen3);
    wo.tool_parser = tool_parser_kind::hermes;
    response_assembler w(wo);
    json body = json::parse(run(w, {pieces(output, size)}));
    const json& message = body["choices"][0]["message"];
    CHECK(message["reasoning_content"] == reasoning);
    CHECK(message["content"] == "Checking.");
    REQUIRE(message["tool_calls"].size() == 1);
    CHECK(message["tool_calls"][0]["function"]["arguments"] == R"({"city":"Paris"})");
    CHECK(body["choices"][0]["finish_reason"] == "tool_calls");
  }
  // Only a call after the reasoning: content null.
  auto o = reasoning_options(false, reasoning_parser_kind::deepseek_r1);
  o.tool_parser = tool_parser_kind::hermes;
  response_assembler only(o);
  json b = json::parse(run(only, {{"plan</think>", "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"}}));
  CHECK(b["choices"][0]["message"]["reasoning_content"] == "plan");
  CHECK(b["choices"][0]["message"]["content"].is_null());
  CHECK(b["choices"][0]["message"]["tool_calls"].size() == 1);
}

TEST_CASE("reasoning: logprobs cover every token and completions are untouched", "[gateway][reasoning]") {
  // Chat with logprobs: one entry per generated token, the reasoning's and the held-back tag's
  // included, streamed or not.
  const script outputs = {{"<think>", "a", "</th", "ink>", "B"}};
  auto make_event = [](size_t step, const std::string& text, bool last) {
    request_output out;
    out.usage = {5, int32_t(step + 1)};
    choice_delta d;
    d.text = text;
    d.token_ids = {int32_t(step)};
    d.logprobs = {token_logprob{int32_t(step), -0.5f, {}}};
    if (last)
      d.finish = finish_reason::stop;
    out.choices.push_back(std::move(d));
    out.finished = last;
    return out;
  };
  for (bool stream : {true, false}) {
    auto o = reasoning_options(stream, reasoning_parser_kind::deepseek_r1);
    o.logprobs = true;
    response_assembler a(o);
    std::string bytes = a.start();
    for (size_t i = 0; i < outputs[0].size(); ++i)
      bytes += a.on_event(0, make_event(i, outputs[0][i], i + 1 == outputs[0].size()));
    bytes += a.finish();
    size_t tokens = 0;
    if (stream) {
      size_t pos = 0;
      while ((pos = bytes.find("\"token\":\"t", pos)) != std::string::npos) {
        ++tokens;
        ++pos;
      }
      auto acc = accumulate(bytes, 1);
      CHECK(acc[0].reasoning == "a");
      CHECK(acc[0].content == "B");
    } else {
      json body = json::parse(bytes);
      tokens = body["choices"][0]["logprobs"]["content"].size();
      CHECK(body["choices"][0]["message"]["reasoning_content"] == "a");
      CHECK(body["usage"]["completion_tokens"] == 5);
    }
    CHECK(tokens == 5);
  }

  // /v1/completions returns the text as generated, tags and all.
  auto o = reasoning_options(false, reasoning_parser_kind::deepseek_r1);
  o.kind = api_kind::completion;
  response_assembler c(o);
  json body = json::parse(run(c, {pieces(r1_output, 5)}));
  CHECK(body["choices"][0]["text"] == r1_output);
  CHECK_FALSE(body["choices"][0].contains("reasoning_content"));
}
