// Response objects and stream chunks: the exact shapes OpenAI clients parse.
#include "gateway/openai_response.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

using namespace actorserve;
using namespace actorserve::gateway;
using nlohmann::json;

namespace {
response_meta meta(bool include_usage = false) { return {"cmpl-abc", 1700000000, "tiny", include_usage}; }
std::string piece(int32_t token) { return "<" + std::to_string(token) + ">"; }
} // namespace

TEST_CASE("completion response: choices, finish and usage", "[gateway][response]") {
  choice_output a{0, "hello", {}, finish_reason::length};
  choice_output b{1, "bye", {}, finish_reason::stop, "END"};
  json j = json::parse(completion_response(meta(), {a, b}, {5, 7, 2}, false, piece));
  CHECK(j["id"] == "cmpl-abc");
  CHECK(j["object"] == "text_completion");
  CHECK(j["created"] == 1700000000);
  CHECK(j["model"] == "tiny");
  REQUIRE(j["choices"].size() == 2);
  CHECK(j["choices"][0]["text"] == "hello");
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(j["choices"][0]["logprobs"].is_null());
  CHECK(j["choices"][0]["stop_reason"].is_null());
  CHECK(j["choices"][1]["index"] == 1);
  CHECK(j["choices"][1]["finish_reason"] == "stop");
  CHECK(j["choices"][1]["stop_reason"] == "END");
  CHECK(j["usage"]["prompt_tokens"] == 5);
  CHECK(j["usage"]["completion_tokens"] == 7);
  CHECK(j["usage"]["total_tokens"] == 12);
  CHECK(j["usage"]["prompt_tokens_details"]["cached_tokens"] == 2);
}

TEST_CASE("completion logprobs: parallel arrays, -inf clamped, offsets accumulate", "[gateway][response]") {
  choice_output c{0, "<3><4>", {}, finish_reason::length};
  c.logprobs.push_back({3, -0.5f, {{3, -0.5f}, {9, -1.5f}}});
  c.logprobs.push_back({4, -std::numeric_limits<float>::infinity(), {{8, -0.25f}}});
  json j = json::parse(completion_response(meta(), {c}, {1, 2, 0}, true, piece, {10}));
  const json& lp = j["choices"][0]["logprobs"];
  CHECK(lp["tokens"] == json::array({"<3>", "<4>"}));
  CHECK(lp["token_logprobs"][0] == -0.5);
  CHECK(lp["token_logprobs"][1] == -9999.0);
  CHECK(lp["text_offset"] == json::array({10, 13}));
  CHECK(lp["top_logprobs"][0]["<9>"] == -1.5);
  CHECK(lp["top_logprobs"][0]["<3>"] == -0.5);
  CHECK(lp["top_logprobs"][1]["<8>"] == -0.25);
  CHECK(lp["top_logprobs"][1]["<4>"] == -9999.0); // the chosen token is always listed
}

TEST_CASE("completion chunk: one choice, null finish until the end, usage null with include_usage",
          "[gateway][response]") {
  json mid = json::parse(completion_chunk(meta(true), {2, "ab"}, false, piece, 0));
  CHECK(mid["object"] == "text_completion");
  REQUIRE(mid["choices"].size() == 1);
  CHECK(mid["choices"][0]["index"] == 2);
  CHECK(mid["choices"][0]["text"] == "ab");
  CHECK(mid["choices"][0]["finish_reason"].is_null());
  CHECK(mid.contains("usage"));
  CHECK(mid["usage"].is_null());
  json last = json::parse(completion_chunk(meta(false), {0, "", {}, finish_reason::stop, {}, 7}, false, piece, 0));
  CHECK(last["choices"][0]["finish_reason"] == "stop");
  CHECK(last["choices"][0]["stop_reason"] == 7);
  CHECK_FALSE(last.contains("usage"));
}

TEST_CASE("chat response: assistant message and chat logprobs with bytes", "[gateway][response]") {
  choice_output c{0, "hi", {}, finish_reason::stop};
  c.logprobs.push_back({1, -0.1f, {{1, -0.1f}, {2, -2.0f}}});
  response_meta m = meta();
  m.id = "chatcmpl-x";
  json j = json::parse(chat_response(m, {c}, {3, 1, 0}, true, piece));
  CHECK(j["object"] == "chat.completion");
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == "hi");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  const json& content = j["choices"][0]["logprobs"]["content"];
  REQUIRE(content.size() == 1);
  CHECK(content[0]["token"] == "<1>");
  CHECK(content[0]["logprob"] == Approx(-0.1));
  CHECK(content[0]["bytes"] == json::array({'<', '1', '>'}));
  REQUIRE(content[0]["top_logprobs"].size() == 2);
  CHECK(content[0]["top_logprobs"][1]["token"] == "<2>");
  CHECK(content[0]["top_logprobs"][1]["logprob"] == -2.0);
  json none = json::parse(chat_response(m, {c}, {3, 1, 0}, false, piece));
  CHECK(none["choices"][0]["logprobs"].is_null());
}

TEST_CASE("chat chunks: role first, then content deltas, then an empty delta with finish_reason",
          "[gateway][response]") {
  response_meta m = meta(true);
  json role = json::parse(chat_role_chunk(m, 1));
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["choices"][0]["index"] == 1);
  CHECK(role["choices"][0]["delta"] == json{{"role", "assistant"}, {"content", ""}});
  CHECK(role["choices"][0]["finish_reason"].is_null());
  CHECK(role["usage"].is_null());
  json content = json::parse(chat_chunk(m, {0, "tok"}, false, piece));
  CHECK(content["choices"][0]["delta"] == json{{"content", "tok"}});
  CHECK(content["choices"][0]["logprobs"].is_null());
  json finish = json::parse(chat_chunk(m, {0, "", {}, finish_reason::length}, false, piece));
  CHECK(finish["choices"][0]["delta"] == json::object());
  CHECK(finish["choices"][0]["finish_reason"] == "length");
  json usage = json::parse(usage_chunk(m, "chat.completion.chunk", {4, 6, 0}));
  CHECK(usage["choices"] == json::array());
  CHECK(usage["usage"]["total_tokens"] == 10);
}

TEST_CASE("responses never throw on invalid UTF-8 in generated text", "[gateway][response]") {
  choice_output c{0, std::string("ok\xff\xc3"), {}, finish_reason::length};
  std::string body;
  REQUIRE_NOTHROW(body = completion_response(meta(), {c}, {1, 1, 0}, false, piece));
  json j = json::parse(body); // still valid JSON (replacement characters)
  CHECK(j["choices"][0]["text"].get<std::string>().rfind("ok", 0) == 0);
}

TEST_CASE("ids and models list", "[gateway][response]") {
  std::string a = make_response_id("chatcmpl"), b = make_response_id("chatcmpl");
  CHECK(a.rfind("chatcmpl-", 0) == 0);
  CHECK(a.size() == 9 + 32);
  CHECK(a != b);
  json models = json::parse(models_response({"tiny", "alias"}, 5, 128, "/models/tiny"));
  CHECK(models["object"] == "list");
  REQUIRE(models["data"].size() == 2);
  CHECK(models["data"][1]["id"] == "alias");
  CHECK(models["data"][0]["object"] == "model");
  CHECK(models["data"][0]["max_model_len"] == 128);
}
