// The gateway's JSON parser keeps the client's key order (chat templates print client objects
// with tojson, as transformers does, in the order sent) without ordered_json's quadratic
// duplicate-key check.
#include "gateway/json_parse.hpp"
#include "gateway/openai_request.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace actorserve::gateway;

TEST_CASE("parse_ordered_json keeps every object's key order", "[gateway][json]") {
  auto j = parse_ordered_json(R"({"z":1,"a":{"y":[{"q":1,"b":2}],"c":null},"m":"x"})");
  CHECK(j.dump() == R"({"z":1,"a":{"y":[{"q":1,"b":2}],"c":null},"m":"x"})");
  CHECK(parse_ordered_json("[3,\"x\",true,-1.5e3,18446744073709551615]").dump() ==
        "[3,\"x\",true,-1500.0,18446744073709551615]");
  CHECK(parse_ordered_json("  \"s\"  ") == "s");
}

TEST_CASE("duplicate keys behave as Python's json.loads: last value, first position", "[gateway][json]") {
  CHECK(parse_ordered_json(R"({"b":1,"a":2,"b":3})").dump() == R"({"b":3,"a":2})");
  // Past the linear-scan size the hash index must give the same answer.
  std::string big = "{";
  for (int i = 0; i < 40; ++i)
    big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  big += R"("k3":"again","k39":{"x":1},"k40":40})";
  auto j = parse_ordered_json(big);
  REQUIRE(j.size() == 41);
  auto it = j.begin();
  CHECK(it.key() == "k0");
  std::advance(it, 3);
  CHECK(it.key() == "k3");
  CHECK(*it == "again");
  CHECK(j["k39"].dump() == R"({"x":1})");
  CHECK((--j.end()).key() == "k40");
}

TEST_CASE("malformed JSON throws json::parse_error and the request parser answers 400", "[gateway][json]") {
  for (const char* bad : {"{", "{\"a\":}", "[1,]", "{} x", "", "{\"a\":1,}", "nul"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_ordered_json(bad), nlohmann::json::parse_error);
    try {
      parse_json_body(bad);
      FAIL("no error");
    } catch (const api_error& e) {
      CHECK(e.status == 400);
      CHECK(e.code == "invalid_json");
    }
  }
  try {
    parse_json_body("{\"a\":\"\xff\"}");
    FAIL("no error");
  } catch (const api_error& e) {
    CHECK(e.code == "invalid_utf8");
  }
}

TEST_CASE("an object with 300,000 keys parses in linear time", "[gateway][json]") {
  // ordered_json::parse compares each new key with all earlier ones (4.5e10 comparisons here).
  std::string body = "{";
  for (int i = 0; i < 300000; ++i)
    body += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  body += "}";
  const auto t0 = std::chrono::steady_clock::now();
  auto j = parse_ordered_json(body);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(j.size() == 300000);
  CHECK(j.begin().key() == "0");
  CHECK(seconds < 3.0); // about 0.1 s unloaded
}
