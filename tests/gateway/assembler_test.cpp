// Engine events -> the bytes a client receives, for streaming and non-streaming responses.
#include "gateway/response_assembler.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace actorserve;
using namespace actorserve::gateway;
using nlohmann::json;

namespace {

assembler_options options(api_kind kind, bool stream, int32_t n = 1, size_t prompts = 1) {
  assembler_options o;
  o.kind = kind;
  o.meta = {kind == api_kind::chat ? "chatcmpl-1" : "cmpl-1", 1700000000, "tiny", false};
  o.stream = stream;
  o.n = n;
  o.num_prompts = prompts;
  o.token_text = [](int32_t t) { return "t" + std::to_string(t); };
  return o;
}

request_output event(std::vector<choice_delta> choices, bool finished = false, int32_t completion_tokens = 0) {
  request_output out;
  out.choices = std::move(choices);
  out.finished = finished;
  out.usage = {3, completion_tokens};
  return out;
}

choice_delta delta(int32_t index, std::string text, finish_reason finish = finish_reason::none) {
  choice_delta d;
  d.index = index;
  d.text = std::move(text);
  d.token_ids = {1};
  d.finish = finish;
  return d;
}

// The data payloads of an SSE byte string, checking the framing on the way.
std::vector<std::string> events_of(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < sse.size()) {
    REQUIRE(sse.compare(pos, 6, "data: ") == 0);
    size_t end = sse.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    out.push_back(sse.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  return out;
}

} // namespace

TEST_CASE("assembler: chat stream is role chunk, content deltas, finish chunk, usage, [DONE]", "[gateway][assembler]") {
  auto o = options(api_kind::chat, true);
  o.meta.include_usage = true;
  response_assembler a(o);
  std::string bytes = a.start();
  bytes += a.on_event(0, event({delta(0, "Hel")}, false, 1));
  bytes += a.on_event(0, event({delta(0, "")}, false, 2)); // held-back text: no chunk
  bytes += a.on_event(0, event({delta(0, "lo", finish_reason::stop)}, true, 3));
  REQUIRE(a.done());
  bytes += a.finish();
  auto ev = events_of(bytes);
  REQUIRE(ev.size() == 6);
  CHECK(json::parse(ev[0])["choices"][0]["delta"] == json{{"role", "assistant"}, {"content", ""}});
  CHECK(json::parse(ev[1])["choices"][0]["delta"]["content"] == "Hel");
  CHECK(json::parse(ev[2])["choices"][0]["delta"]["content"] == "lo");
  CHECK(json::parse(ev[2])["choices"][0]["finish_reason"].is_null());
  CHECK(json::parse(ev[3])["choices"][0]["delta"] == json::object());
  CHECK(json::parse(ev[3])["choices"][0]["finish_reason"] == "stop");
  json usage = json::parse(ev[4]);
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["completion_tokens"] == 3);
  CHECK(usage["usage"]["prompt_tokens"] == 3);
  CHECK(ev[5] == "[DONE]");
  for (size_t i = 0; i < 4; ++i) // every chunk before the usage chunk carries "usage": null
    CHECK(json::parse(ev[i])["usage"].is_null());
  CHECK(a.summary_reason() == "stop");
}

TEST_CASE("assembler: completions stream with n > 1 numbers choices and ends with [DONE] only", "[gateway][assembler]") {
  response_assembler a(options(api_kind::completion, true, 2));
  std::string bytes = a.start();
  CHECK(bytes.empty()); // completions have no role chunk
  bytes += a.on_event(0, event({delta(0, "a"), delta(1, "b")}));
  bytes += a.on_event(0, event({delta(1, "c", finish_reason::length), delta(0, "d", finish_reason::stop)}, true, 4));
  bytes += a.finish();
  auto ev = events_of(bytes);
  REQUIRE(ev.size() == 5);
  CHECK(json::parse(ev[0])["choices"][0]["index"] == 0);
  CHECK(json::parse(ev[1])["choices"][0]["index"] == 1);
  json last_b = json::parse(ev[2]);
  CHECK(last_b["choices"][0]["text"] == "c");
  CHECK(last_b["choices"][0]["finish_reason"] == "length");
  CHECK_FALSE(last_b.contains("usage")); // no include_usage: no usage field at all
  CHECK(ev[4] == "[DONE]");
  CHECK(a.summary_reason() == "length");
}

TEST_CASE("assembler: non-streaming body accumulates text, logprobs and echo, and numbers multi-prompt choices",
          "[gateway][assembler]") {
  auto o = options(api_kind::completion, false, 2, 2);
  o.logprobs = true;
  o.echo_text = {"P0:", "P1:"};
  response_assembler a(o);
  CHECK(a.start().empty());
  auto with_lp = [](choice_delta d, int32_t token) {
    d.logprobs.push_back({token, -1.0f, {}});
    return d;
  };
  CHECK(a.on_event(1, event({with_lp(delta(0, "x"), 5), with_lp(delta(1, "y"), 6)})).empty());
  CHECK(a.on_event(0, event({delta(0, "u", finish_reason::stop), delta(1, "v", finish_reason::stop)}, true, 2)).empty());
  CHECK_FALSE(a.done());
  a.on_event(1, event({with_lp(delta(0, "z", finish_reason::length), 7), delta(1, "", finish_reason::stop)}, true, 3));
  REQUIRE(a.done());
  json body = json::parse(a.finish());
  REQUIRE(body["choices"].size() == 4);
  CHECK(body["choices"][0]["text"] == "P0:u");
  CHECK(body["choices"][2]["index"] == 2);
  CHECK(body["choices"][2]["text"] == "P1:xz");
  CHECK(body["choices"][2]["finish_reason"] == "length");
  CHECK(body["choices"][2]["logprobs"]["tokens"] == json::array({"t5", "t7"}));
  CHECK(body["choices"][2]["logprobs"]["text_offset"][0] == 3); // after the echoed prompt
  CHECK(body["choices"][3]["text"] == "P1:y");
  CHECK(body["usage"]["prompt_tokens"] == 6);       // both prompts
  CHECK(body["usage"]["completion_tokens"] == 5);
}

TEST_CASE("assembler: an engine failure becomes an error event in a stream, an error body otherwise",
          "[gateway][assembler]") {
  response_assembler s(options(api_kind::chat, true));
  s.start();
  request_output failed = event({}, true);
  failed.error = engine_errc::executor_failed;
  failed.error_message = "backend exploded";
  auto ev = events_of(s.on_event(0, failed) + s.finish());
  REQUIRE(ev.size() == 2);
  CHECK(json::parse(ev[0])["error"]["message"] == "backend exploded");
  CHECK(ev[1] == "[DONE]");
  CHECK(s.summary_reason() == "error");

  response_assembler b(options(api_kind::completion, false));
  b.on_event(0, failed);
  REQUIRE(b.failure());
  CHECK(b.failure()->status == 500);
  CHECK(json::parse(b.finish())["error"]["type"] == "server_error");
}

TEST_CASE("engine_failure maps engine errors to HTTP statuses", "[gateway][assembler]") {
  CHECK(engine_failure(engine_errc::overloaded, "full").status == 429);
  CHECK(engine_failure(engine_errc::invalid_request, "bad").status == 400);
  CHECK(engine_failure(engine_errc::shutting_down, "bye").status == 503);
  CHECK(engine_failure(engine_errc::executor_failed, "").status == 500);
}
