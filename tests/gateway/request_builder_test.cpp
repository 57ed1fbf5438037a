// Parsed requests -> engine requests, with a fake text frontend (one token per byte).
#include "gateway/request_builder.hpp"
#include "request_test_helpers.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using namespace actorserve::gateway;
using namespace actorserve::gateway::test;

namespace {

class byte_frontend : public text_frontend {
public:
  std::vector<int32_t> encode(const std::string& text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special)
      ids.push_back(999); // BOS
    for (unsigned char c : text)
      ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids, bool) const override {
    std::string s;
    for (int32_t id : ids)
      if (id < 256)
        s += char(id);
    return s;
  }
  std::string token_text(int32_t t) const override { return std::string(1, char(t)); }
  std::string apply_chat_template(const chat_request& r) const override {
    std::string s;
    for (const auto& m : r.messages)
      s += "<" + m.role + ">" + m.content;
    return s + (r.add_generation_prompt ? "<assistant>" : "");
  }
  bool chat_adds_special_tokens() const override { return false; }
  int64_t vocab_size() const override { return 1000; }
  sampling_params default_sampling() const override { return {}; }
  std::shared_ptr<const detokenizer> engine_detokenizer() const override { return nullptr; }
};

const auto arrival = engine_clock::now();

} // namespace

TEST_CASE("prepare_completion: tokenizes text prompts, keeps token prompts, fills every field", "[gateway][builder]") {
  byte_frontend f;
  auto r = parse_completion_request(parse_json_body(R"({"prompt":["ab",""],"max_tokens":4,"n":2,"seed":7,
    "stop":["x"],"ignore_eos":true,"temperature":0,"logprobs":1,"min_tokens":2,"echo":true})"), limits());
  auto p = prepare_completion(r, f, 64, arrival);
  REQUIRE(p.engine_requests.size() == 2);
  const generate_request& g = p.engine_requests[0];
  CHECK(g.prompt_token_ids == std::vector<int32_t>{999, 'a', 'b'});
  CHECK(p.engine_requests[1].prompt_token_ids == std::vector<int32_t>{999}); // "" is just BOS
  CHECK(g.max_tokens == 4);
  CHECK(g.n == 2);
  CHECK(g.has_seed);
  CHECK(g.sampling.seed == 7);
  CHECK(g.sampling.temperature == 0.0f);
  CHECK(g.sampling.logprobs == 1);
  CHECK(g.stop == std::vector<std::string>{"x"});
  CHECK(g.ignore_eos);
  CHECK(g.min_tokens == 2);
  CHECK(g.arrival_time == arrival);
  CHECK(p.echo_text == std::vector<std::string>{"ab", ""});

  auto ids = parse_completion_request(parse_json_body(R"({"prompt":[[104,105]],"echo":true,"max_tokens":null})"), limits());
  auto q = prepare_completion(ids, f, 64, arrival);
  CHECK(q.engine_requests[0].prompt_token_ids == std::vector<int32_t>{104, 105});
  CHECK(q.engine_requests[0].max_tokens == 62); // null: the rest of the context
  CHECK(q.echo_text == std::vector<std::string>{"hi"});
}

TEST_CASE("prepare_chat: template then tokenize, context checks", "[gateway][builder]") {
  byte_frontend f;
  auto r = parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"hi"}]})"), limits());
  auto p = prepare_chat(r, f, 64, arrival);
  REQUIRE(p.engine_requests.size() == 1);
  const std::string expected = "<user>hi<assistant>";
  CHECK(p.engine_requests[0].prompt_token_ids.size() == expected.size()); // no BOS: the template owns it
  CHECK(p.engine_requests[0].max_tokens == int32_t(64 - expected.size()));

  auto too_long = error_of([&] { prepare_chat(r, f, int32_t(expected.size()), arrival); });
  REQUIRE(too_long);
  CHECK(too_long->code == "context_length_exceeded");
  CHECK(too_long->param == "messages");

  auto r2 = parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":60})"),
                               limits());
  auto past = error_of([&] { prepare_chat(r2, f, 64, arrival); });
  REQUIRE(past);
  CHECK(past->param == "max_tokens");
  CHECK(past->status == 400);
}

TEST_CASE("prepare_chat: the mistral tool parser decodes with special tokens kept", "[gateway][builder][tools]") {
  // [TOOL_CALLS] is a special token: skip_special_tokens would take the marker out of the text.
  byte_frontend f;
  auto l = limits();
  l.enable_auto_tool_choice = true;
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}],
    "tools":[{"type":"function","function":{"name":"f"}}]})";
  for (auto kind : {tool_parser_kind::mistral, tool_parser_kind::hermes, tool_parser_kind::llama3_json}) {
    l.tool_parser = kind;
    auto r = parse_chat_request(parse_json_body(body), l);
    REQUIRE(r.tool_parser == kind);
    CHECK(prepare_chat(r, f, 64, arrival).engine_requests[0].skip_special_tokens == (kind != tool_parser_kind::mistral));
  }
  // No tools: the request's own setting stands.
  auto plain = parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"hi"}]})"), l);
  CHECK(prepare_chat(plain, f, 64, arrival).engine_requests[0].skip_special_tokens);
}

TEST_CASE("generation_config defaults apply only where the request is silent", "[gateway][builder]") {
  auto l = limits();
  l.defaults.temperature = 0.8f;
  l.defaults.top_p = 0.95f;
  auto silent = parse_completion_request(parse_json_body(R"({"prompt":"x"})"), l);
  CHECK(silent.params.sampling.temperature == Approx(0.8));
  CHECK(silent.params.sampling.top_p == Approx(0.95));
  auto explicit_ = parse_completion_request(parse_json_body(R"({"prompt":"x","temperature":0.1})"), l);
  CHECK(explicit_.params.sampling.temperature == Approx(0.1));
  CHECK(explicit_.params.sampling.top_p == Approx(0.95));
}
