// /v1/chat/completions bodies: messages, tools, logprobs, bad inputs.
#include "request_test_helpers.hpp"

#include <catch2/catch.hpp>

using namespace actorserve::gateway;
using namespace actorserve::gateway::test;

namespace {
chat_request parse(const std::string& body) { return parse_chat_request(parse_json_body(body), limits()); }

void require_error(const std::string& body, int status, const std::string& param, const std::string& code = {}) {
  auto e = chat_error(body);
  INFO(body);
  REQUIRE(e.has_value());
  CHECK(e->status == status);
  CHECK(e->param == param);
  if (!code.empty())
    CHECK(e->code == code);
}
} // namespace

TEST_CASE("chat: messages in every content form", "[gateway][request]") {
  auto r = parse(R"({"model":"tiny","messages":[
    {"role":"system","content":"be brief"},
    {"role":"user","content":[{"type":"text","text":"hel"},{"type":"text","text":"lo"}],"name":"ann"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","content":"42","tool_call_id":"c1"}]})");
  REQUIRE(r.messages.size() == 4);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[0].content == "be brief");
  CHECK(r.messages[1].content == "hello");
  CHECK(r.messages[1].name == "ann");
  CHECK_FALSE(r.messages[2].has_content);
  REQUIRE(r.messages[2].tool_calls.is_array());
  CHECK(r.messages[2].tool_calls[0]["id"] == "c1");
  CHECK(r.messages[3].tool_call_id == "c1");
  CHECK(r.add_generation_prompt);
  CHECK_FALSE(r.params.max_tokens.has_value()); // chat's default: the rest of the context
}

TEST_CASE("chat: max_completion_tokens wins over max_tokens", "[gateway][request]") {
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":5})").params.max_tokens == 5);
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9})")
            .params.max_tokens == 9);
}

TEST_CASE("chat: logprobs and top_logprobs", "[gateway][request]") {
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}]})").params.sampling.logprobs == -1);
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})").params.sampling.logprobs == 0);
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":5})")
            .params.sampling.logprobs == 5);
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"logprobs":false})").params.sampling.logprobs == -1);
  require_error(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":3})", 400, "top_logprobs");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})", 400,
                "top_logprobs", "integer_above_max_value");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"logprobs":3})", 400, "logprobs", "invalid_type");
}

request_limits tool_limits(bool auto_choice) {
  request_limits l = limits();
  l.tool_parser = tool_parser_kind::hermes;
  l.enable_auto_tool_choice = auto_choice;
  return l;
}

TEST_CASE("chat: tools and tool_choice pass through to the template", "[gateway][request]") {
  auto r = parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
    "tool_choice":{"type":"function","function":{"name":"get_weather"}}})"), tool_limits(false));
  REQUIRE(r.tools.is_array());
  CHECK(r.tools[0]["function"]["parameters"]["type"] == "object");
  CHECK(r.tool_choice["function"]["name"] == "get_weather");
  CHECK(r.tool_parser == tool_parser_kind::hermes);
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"none"})").tool_choice == "none");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", 400, "tools", "invalid_type");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"retrieval"}]})", 400,
                "tools[0].type");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]})", 400,
                "tools[0].function.name", "missing_required_parameter");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})", 400, "tool_choice");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", 400, "tool_choice");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],
    "tool_choice":{"type":"function","function":{"name":"b"}}})", 400, "tool_choice");
}

TEST_CASE("chat: bad messages", "[gateway][request]") {
  require_error(R"({"model":"tiny"})", 400, "messages", "missing_required_parameter");
  require_error(R"({"messages":"hi"})", 400, "messages", "invalid_type");
  require_error(R"({"messages":[]})", 400, "messages", "empty_array");
  require_error(R"({"messages":["hi"]})", 400, "messages[0]", "invalid_type");
  require_error(R"({"messages":[{"content":"x"}]})", 400, "messages[0].role", "missing_required_parameter");
  require_error(R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "messages[0].role", "invalid_value");
  require_error(R"({"messages":[{"role":"user"}]})", 400, "messages[0].content", "missing_required_parameter");
  require_error(R"({"messages":[{"role":"user","content":5}]})", 400, "messages[0].content", "invalid_type");
  require_error(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", 400,
                "messages[0].content[0].type", "unsupported_content_type");
  require_error(R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", 400, "messages[0].content[0].text",
                "missing_required_parameter");
  require_error(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})", 400, "messages[0].tool_calls");
}

TEST_CASE("chat: an assistant's reasoning comes back as reasoning_content or reasoning", "[gateway][request]") {
  auto r = parse(R"({"model":"tiny","messages":[
    {"role":"user","content":"q"},
    {"role":"assistant","content":"a","reasoning_content":"think 1"},
    {"role":"assistant","content":"b","reasoning":"think 2"},
    {"role":"assistant","content":"c","reasoning_content":"same","reasoning":"same"},
    {"role":"assistant","content":"d","reasoning_content":null,"reasoning":null},
    {"role":"assistant","content":"e","reasoning_content":""},
    {"role":"user","content":"u","reasoning":null}]})");
  REQUIRE(r.messages.size() == 7);
  CHECK(r.messages[0].reasoning == std::nullopt);
  CHECK(r.messages[1].reasoning == "think 1");
  CHECK(r.messages[2].reasoning == "think 2");
  CHECK(r.messages[3].reasoning == "same");
  CHECK(r.messages[4].reasoning == std::nullopt); // null is "not given"
  CHECK(r.messages[5].reasoning == "");          // empty is given: the template decides
  CHECK(r.messages[6].reasoning == std::nullopt);

  auto message = [](const std::string& fields) {
    return R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a",)" + fields + "}]}";
  };
  require_error(message(R"("reasoning_content":5)"), 400, "messages[1].reasoning_content", "invalid_type");
  require_error(message(R"("reasoning":["x"])"), 400, "messages[1].reasoning", "invalid_type");
  require_error(message(R"("reasoning_content":{"text":"x"})"), 400, "messages[1].reasoning_content", "invalid_type");
  require_error(message(R"("reasoning_content":"x","reasoning":true)"), 400, "messages[1].reasoning", "invalid_type");
  require_error(message(R"("reasoning_content":"x","reasoning":"y")"), 400, "messages[1].reasoning");
  auto e = chat_error(R"({"messages":[{"role":"user","content":"q","reasoning_content":"x"}]})");
  REQUIRE(e);
  CHECK(e->status == 400);
  CHECK(e->param == "messages[0].reasoning_content");
  CHECK_THAT(e->message, Catch::Contains("only messages with role 'assistant'"));
  require_error(R"({"messages":[{"role":"tool","content":"q","tool_call_id":"c","reasoning":"x"}]})", 400,
                "messages[0].reasoning");
}

TEST_CASE("chat: shared parameter checks apply", "[gateway][request]") {
  require_error(R"({"model":"nope","messages":[{"role":"user","content":"x"}]})", 404, "model", "model_not_found");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", 400, "max_tokens",
                "integer_below_min_value");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":-1})", 400,
                "max_completion_tokens", "integer_below_min_value");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"n":200})", 400, "n", "integer_above_max_value");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", 400, "temperature");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})", 400,
                "response_format", "unsupported_parameter");
  CHECK(parse(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}})").messages.size() == 1);
}

TEST_CASE("chat: generation prompt flags", "[gateway][request]") {
  auto r = parse(R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"The answer is"}],
    "continue_final_message":true})");
  CHECK(r.continue_final_message);
  CHECK_FALSE(r.add_generation_prompt);
  require_error(R"({"messages":[{"role":"user","content":"x"}],"continue_final_message":true})", 400,
                "continue_final_message");
  require_error(R"({"messages":[{"role":"assistant","content":"x"}],"continue_final_message":true,
    "add_generation_prompt":true})", 400, "continue_final_message");
  require_error(R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":[1]})", 400,
                "chat_template_kwargs", "invalid_type");
}

TEST_CASE("chat: tool_choice follows vLLM's rules on the server's tool flags", "[gateway][request]") {
  const std::string tools = R"("messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])";
  auto with = [&](const std::string& extra, const request_limits& l) {
    return parse_chat_request(parse_json_body("{" + tools + extra + "}"), l);
  };
  auto error_with = [&](const std::string& extra, const request_limits& l) {
    return error_of([&] { with(extra, l); });
  };
  // No flags: tools imply "auto", which needs --enable-auto-tool-choice and a parser.
  auto e = error_with("", limits());
  REQUIRE(e);
  CHECK(e->status == 400);
  CHECK(e->param == "tool_choice");
  CHECK(e->code == "tool_choice_not_enabled");
  CHECK_THAT(e->message, Catch::Contains("--enable-auto-tool-choice") && Catch::Contains("\"none\""));
  CHECK(error_with(R"(,"tool_choice":"auto")", limits()));
  CHECK(error_with(R"(,"tool_choice":"auto")", tool_limits(false))); // a parser alone is not enough for auto
  e = error_with(R"(,"tool_choice":"required")", limits());
  REQUIRE(e);
  CHECK_THAT(e->message, Catch::Contains("--tool-call-parser"));
  CHECK(error_with(R"(,"tool_choice":{"type":"function","function":{"name":"f"}})", limits()));
  // "none" always works: the tools are not shown to the model and nothing is parsed.
  CHECK_FALSE(with(R"(,"tool_choice":"none")", limits()).tool_parser);
  // With the flags every choice is parsed with the server's parser.
  CHECK(with("", tool_limits(true)).tool_parser == tool_parser_kind::hermes);
  CHECK(with(R"(,"tool_choice":"auto")", tool_limits(true)).tool_parser == tool_parser_kind::hermes);
  CHECK(with(R"(,"tool_choice":"required")", tool_limits(false)).tool_parser == tool_parser_kind::hermes);
  // No tools: nothing to parse, and "required" has nothing to require.
  CHECK_FALSE(parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"x"}]})"), tool_limits(true))
                  .tool_parser);
  CHECK(error_of([&] {
    parse_chat_request(parse_json_body(R"({"messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":"required"})"),
                       tool_limits(true));
  }));
  // Bad tool_choice shapes are 400 whatever the flags.
  for (const char* bad : {R"(,"tool_choice":"sometimes")", R"(,"tool_choice":7)", R"(,"tool_choice":{"type":"function"})",
                          R"(,"tool_choice":{"type":"function","function":{"name":"g"}})"}) {
    INFO(bad);
    auto err = error_with(bad, tool_limits(true));
    REQUIRE(err);
    CHECK(err->status == 400);
    CHECK(err->param.rfind("tool_choice", 0) == 0);
  }
}
