// SSE framing and parsing, bearer auth, access log lines, error bodies.
#include "gateway/access_log.hpp"
#include "gateway/api_error.hpp"
#include "gateway/auth.hpp"
#include "gateway/sse.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace actorserve::gateway;

TEST_CASE("sse: events are data lines ended by a blank line", "[gateway][sse]") {
  CHECK(sse_event(R"({"a":1})") == "data: {\"a\":1}\n\n");
  CHECK(sse_done() == "data: [DONE]\n\n");
}

TEST_CASE("sse parser: events split across feeds, CRLF, comments, multi-line data", "[gateway][sse]") {
  std::vector<std::string> events;
  sse_parser parser([&](std::string_view d) { events.emplace_back(d); });
  const std::string stream = ": keep-alive\n\ndata: {\"x\":1}\n\nevent: e\r\ndata:two\r\ndata: lines\r\n\r\n" +
                             sse_done();
  for (char c : stream) // one byte at a time: the worst split
    parser.feed(std::string_view(&c, 1));
  REQUIRE(events.size() == 3);
  CHECK(events[0] == "{\"x\":1}");
  CHECK(events[1] == "two\nlines");
  CHECK(events[2] == "[DONE]");
  CHECK(parser.pending_bytes() == 0);
  parser.feed("data: partial");
  CHECK(events.size() == 3); // not dispatched before the blank line
}

TEST_CASE("auth: bearer token compare", "[gateway][auth]") {
  CHECK(constant_time_equal("secret", "secret"));
  CHECK_FALSE(constant_time_equal("secret", "secreT"));
  CHECK_FALSE(constant_time_equal("secret", "secret2"));
  CHECK_FALSE(constant_time_equal("", "x"));
  CHECK(constant_time_equal("", ""));
  CHECK(bearer_authorized("Bearer secret", "secret"));
  CHECK(bearer_authorized("bearer  secret ", "secret"));
  CHECK_FALSE(bearer_authorized("Bearer secre", "secret"));
  CHECK_FALSE(bearer_authorized("Basic secret", "secret"));
  CHECK_FALSE(bearer_authorized("secret", "secret"));
  CHECK_FALSE(bearer_authorized("", "secret"));
  auto e = unauthorized_error();
  CHECK(e.status == 401);
  CHECK(e.code == "invalid_api_key");
}

TEST_CASE("error bodies have OpenAI's four fields, null when empty", "[gateway][error]") {
  auto j = nlohmann::json::parse(error_body(invalid_request("bad n", "n", "integer_above_max_value")));
  CHECK(j["error"]["message"] == "bad n");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(j["error"]["param"] == "n");
  CHECK(j["error"]["code"] == "integer_above_max_value");
  auto k = nlohmann::json::parse(error_body(api_error(500, "boom\xff", "server_error")));
  CHECK(k["error"]["param"].is_null());
  CHECK(k["error"]["code"].is_null());
}

TEST_CASE("access log line carries id, status, tokens and latency", "[gateway][log]") {
  access_record r{"chatcmpl-1", "127.0.0.1:5000", "POST", "/v1/chat/completions", 200, 12, 34, 56.78, true, "stop"};
  const std::string line = access_line(r);
  CHECK(line.find("id=chatcmpl-1") != std::string::npos);
  CHECK(line.find("\"POST /v1/chat/completions\"") != std::string::npos);
  CHECK(line.find("status=200") != std::string::npos);
  CHECK(line.find("prompt_tokens=12") != std::string::npos);
  CHECK(line.find("completion_tokens=34") != std::string::npos);
  CHECK(line.find("latency_ms=56.8") != std::string::npos);
  CHECK(line.find("finish=stop") != std::string::npos);
}
