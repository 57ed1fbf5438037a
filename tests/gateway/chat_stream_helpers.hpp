#pragma once
// Helpers for the chat response tests: feed an assembler scripted engine events and read its
// SSE stream back the way the OpenAI SDK accumulates one (content and reasoning appended;
// tool_calls by index: the first delta of a call carries id, type and name, later ones append
// to arguments).

#include "gateway/response_assembler.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace actorserve::gateway::test {

using nlohmann::json;

// The model's output for each choice as a list of text deltas (one per event).
using script = std::vector<std::vector<std::string>>;

inline std::string run(response_assembler& a, const script& choices, finish_reason finish = finish_reason::stop) {
  std::string bytes = a.start();
  size_t steps = 0;
  for (const auto& c : choices)
    steps = std::max(steps, c.size());
  for (size_t step = 0; step < steps; ++step) {
    request_output out;
    out.usage = {5, int32_t(step + 1)};
    for (size_t i = 0; i < choices.size(); ++i) {
      if (step >= choices[i].size())
        continue;
      choice_delta d;
      d.index = int32_t(i);
      d.text = choices[i][step];
      d.token_ids = {int32_t(step)};
      if (step + 1 == choices[i].size())
        d.finish = finish;
      out.choices.push_back(std::move(d));
    }
    out.finished = step + 1 == steps;
    bytes += a.on_event(0, out);
  }
  REQUIRE(a.done());
  return bytes + a.finish();
}

struct accumulated {
  std::string content;
  std::string reasoning;        // reasoning_content (every delta with it has the same "reasoning")
  size_t reasoning_chunks = 0;  // deltas that carried reasoning
  json tool_calls = json::array();
  std::string finish_reason;
};

// An SSE stream read as the OpenAI SDK reads it (openai-node's ChatCompletionStream).
inline std::vector<accumulated> accumulate(const std::string& sse, size_t n) {
  std::vector<accumulated> out(n);
  size_t pos = 0;
  bool done = false;
  while (pos < sse.size()) {
    REQUIRE(sse.compare(pos, 6, "data: ") == 0);
    const size_t end = sse.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    const std::string data = sse.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    json chunk = json::parse(data);
    CHECK(chunk["object"] == "chat.completion.chunk");
    for (const auto& choice : chunk["choices"]) {
      accumulated& acc = out.at(choice["index"].get<size_t>());
      const json& delta = choice["delta"];
      if (delta.contains("content") && delta["content"].is_string())
        acc.content += delta["content"].get<std::string>();
      CHECK(delta.contains("reasoning_content") == delta.contains("reasoning"));
      if (delta.contains("reasoning_content")) {
        CHECK(delta["reasoning"] == delta["reasoning_content"]);
        acc.reasoning += delta["reasoning_content"].get<std::string>();
        ++acc.reasoning_chunks;
      }
      if (delta.contains("tool_calls")) {
        for (const auto& tc : delta["tool_calls"]) {
          const size_t index = tc["index"].get<size_t>();
          if (index == acc.tool_calls.size()) { // a new call must open with id, type and name
            REQUIRE(tc.contains("id"));
            CHECK(tc["type"] == "function");
            acc.tool_calls.push_back({{"id", tc["id"]},
                                      {"type", "function"},
                                      {"function", {{"name", tc["function"]["name"]}, {"arguments", ""}}}});
          } else {
            REQUIRE(index < acc.tool_calls.size());
            CHECK_FALSE(tc.contains("id"));
          }
          if (tc["function"].contains("arguments"))
            acc.tool_calls[index]["function"]["arguments"] =
                acc.tool_calls[index]["function"]["arguments"].get<std::string>() +
                tc["function"]["arguments"].get<std::string>();
        }
      }
      if (!choice["finish_reason"].is_null()) {
        CHECK(acc.finish_reason.empty());
        acc.finish_reason = choice["finish_reason"].get<std::string>();
      }
    }
  }
  CHECK(done);
  return out;
}

// Splits text into pieces of `size` bytes, as tokens would arrive; a piece is extended to the
// end of a UTF-8 character, since the detokenizer releases only whole characters.
inline std::vector<std::string> pieces(const std::string& text, size_t size) {
  std::vector<std::string> out;
  for (size_t at = 0; at < text.size();) {
    size_t end = std::min(text.size(), at + size);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      ++end;
    out.push_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

} // namespace actorserve::gateway::test
