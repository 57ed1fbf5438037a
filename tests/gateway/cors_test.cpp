// CORS header logic (vLLM's flags, Starlette's rules): which origin is named, what a preflight
// allows, and the two list forms of the flags.
#include "gateway/cors.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>

using namespace actorserve::gateway;

namespace {

std::map<std::string, std::string> as_map(const header_list& headers) {
  std::map<std::string, std::string> m;
  for (const auto& [name, value] : headers)
    m[name] = value;
  return m;
}

cors_options only_a() {
  cors_options o;
  o.allowed_origins = {"https://a.example"};
  return o;
}

} // namespace

TEST_CASE("cors: flag lists are JSON lists or comma-separated", "[gateway][cors]") {
  CHECK(parse_cors_list("--allowed-origins", R"(["https://a.example", "http://b.example:8080"])") ==
        std::vector<std::string>{"https://a.example", "http://b.example:8080"});
  CHECK(parse_cors_list("--allowed-methods", "GET, POST,OPTIONS") == std::vector<std::string>{"GET", "POST", "OPTIONS"});
  CHECK(parse_cors_list("--allowed-origins", R"(["*"])") == std::vector<std::string>{"*"});
  CHECK(parse_cors_list("--allowed-origins", "*") == std::vector<std::string>{"*"});
  CHECK(parse_cors_list("--allowed-origins", "[]").empty());
  CHECK_THROWS_AS(parse_cors_list("--allowed-origins", "[\"a\""), std::invalid_argument);
  CHECK_THROWS_WITH(parse_cors_list("--allowed-headers", "[1, 2]"), Catch::Contains("--allowed-headers"));
}

TEST_CASE("cors: the defaults answer any origin with *", "[gateway][cors]") {
  const cors_options o;
  CHECK(as_map(cors_response_headers(o, "https://x.example")) ==
        std::map<std::string, std::string>{{"Access-Control-Allow-Origin", "*"}});
  CHECK(cors_response_headers(o, "").empty()); // no Origin: not a CORS request
}

TEST_CASE("cors: a listed origin is named, another gets nothing", "[gateway][cors]") {
  const cors_options o = only_a();
  auto h = as_map(cors_response_headers(o, "https://a.example"));
  CHECK(h["Access-Control-Allow-Origin"] == "https://a.example");
  CHECK(h["Vary"] == "Origin");
  CHECK(h.count("Access-Control-Allow-Credentials") == 0);
  CHECK(cors_response_headers(o, "https://evil.example").empty());
  CHECK(cors_response_headers(o, "https://a.example.evil").empty()); // exact match only
}

TEST_CASE("cors: credentials name the origin even when any is allowed", "[gateway][cors]") {
  cors_options o;
  o.allow_credentials = true;
  auto h = as_map(cors_response_headers(o, "https://x.example"));
  CHECK(h["Access-Control-Allow-Origin"] == "https://x.example");
  CHECK(h["Access-Control-Allow-Credentials"] == "true");
}

TEST_CASE("cors: preflight with the defaults allows any method and echoes the headers", "[gateway][cors]") {
  const preflight_answer a = cors_preflight({}, "https://x.example", "POST", "authorization, content-type");
  CHECK(a.status == 200);
  auto h = as_map(a.headers);
  CHECK(h["Access-Control-Allow-Origin"] == "*");
  CHECK(h["Access-Control-Allow-Methods"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
  CHECK(h["Access-Control-Allow-Headers"] == "authorization, content-type");
  CHECK(h["Access-Control-Max-Age"] == "600");
}

TEST_CASE("cors: preflight refuses an origin, method or header not listed", "[gateway][cors]") {
  cors_options o = only_a();
  o.allowed_methods = {"GET", "post"};
  o.allowed_headers = {"Authorization"};
  preflight_answer a = cors_preflight(o, "https://a.example", "POST", "Authorization, Content-Type");
  CHECK(a.status == 200); // content-type is safelisted; names compare in any case
  auto h = as_map(a.headers);
  CHECK(h["Access-Control-Allow-Origin"] == "https://a.example");
  CHECK(h["Access-Control-Allow-Methods"] == "GET, POST");
  CHECK(h["Access-Control-Allow-Headers"] == "accept, accept-language, authorization, content-language, content-type");

  a = cors_preflight(o, "https://b.example", "POST", "");
  CHECK(a.status == 400);
  CHECK(a.headers.empty());
  CHECK(a.reason == "Disallowed CORS origin.");
  a = cors_preflight(o, "https://a.example", "DELETE", "x-custom");
  CHECK(a.status == 400);
  CHECK(a.headers.empty());
  CHECK(a.reason == "Disallowed CORS method, headers.");
}

TEST_CASE("cors: is_preflight needs OPTIONS, Origin and the requested method", "[gateway][cors]") {
  CHECK(is_preflight("OPTIONS", "https://a.example", "POST"));
  CHECK_FALSE(is_preflight("OPTIONS", "", "POST"));
  CHECK_FALSE(is_preflight("OPTIONS", "https://a.example", ""));
  CHECK_FALSE(is_preflight("POST", "https://a.example", "POST"));
}
