// The gateway's chat path (request JSON -> parse_chat_request -> text_frontend's template)
// renders tool definitions and tool calls in the client's key order, byte for byte as Python's
// jinja2 with transformers' settings renders them (scripts/chat_template_reference.py), for
// real tokenizer folders. The conversation is tool_key_order of
// tests/fixtures/chat_template/conversations.json: keys deliberately not in sorted order.
#include "gateway/openai_request.hpp"
#include "gateway/text_frontend.hpp"
#include "tests/chat_template/reference_support.hpp"
#include "tests/gateway/model_folder.hpp"

#include <catch2/catch.hpp>

using namespace actorserve::testing::chat;
namespace fs = std::filesystem;
namespace gw = actorserve::gateway;
using actorserve::gateway::test::model_folder;

namespace {

// The conversation as an OpenAI client sends it: tool call arguments as JSON strings.
ojson openai_body(const ojson& conversation, bool add_generation_prompt) {
  ojson messages = conversation["messages"];
  for (auto& m : messages)
    if (m.contains("tool_calls"))
      for (auto& call : m["tool_calls"])
        call["function"]["arguments"] = call["function"]["arguments"].dump();
  return {{"model", "m"},
          {"messages", messages},
          {"tools", conversation["tools"]},
          {"add_generation_prompt", add_generation_prompt}};
}

gw::request_limits limits() {
  gw::request_limits l;
  l.model_names = {"m"};
  l.tool_parser = actorserve::gateway::tool_parser_kind::hermes; // tools with tool_choice "auto" are allowed
  l.enable_auto_tool_choice = true;
  return l;
}

} // namespace

TEST_CASE("the gateway renders tools and tool calls in the client's key order, as jinja2 does",
          "[gateway][chat_template]") {
  use_utc();
  ojson conversation = conversation_named("tool_key_order");
  REQUIRE(conversation.is_object());

  actorserve::testing::temp_dir root;
  const std::vector<std::string> names = {"qwen3", "llama3", "mistral_nemo"};
  std::string arguments = "cases --only tool_key_order --conversations " + quoted(fixtures() / "conversations.json");
  for (const auto& name : names)
    arguments += " " + quoted(model_folder(name, root.path()));
  const ojson reference = run_reference(arguments);

  for (const auto& name : names) {
    INFO(name);
    auto frontend = gw::load_text_frontend(root.path() / name);
    REQUIRE(reference[name].size() == 2);
    for (const auto& expected : reference[name]) {
      const bool agp = expected["add_generation_prompt"].get<bool>();
      INFO("add_generation_prompt " << agp);
      REQUIRE(expected.contains("output"));
      // Through the text of the request, as the HTTP server gets it.
      const std::string body = openai_body(conversation, agp).dump();
      gw::chat_request request = gw::parse_chat_request(gw::parse_json_body(body), limits());
      CHECK(frontend->apply_chat_template(request) == expected["output"].get<std::string>());
    }
  }
  // The comparison above would pass with sorted keys if the templates did not print them.
  for (const auto& name : {"qwen3", "mistral_nemo"}) {
    const std::string out = reference[name][1]["output"];
    CHECK_THAT(out, Catch::Contains(R"({"unit": "celsius", "city": "Paris", "when": {"time": "now", "day": "today"}})"));
    CHECK_THAT(out, Catch::Contains(R"("properties": {"z": {"type": "integer"}, "a": {"type": "integer"}})"));
  }
}

TEST_CASE("tool call arguments must be JSON (a string) or an object", "[gateway][chat_template]") {
  auto error = [](const std::string& arguments) -> std::optional<gw::api_error> {
    const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":)" +
                             arguments + "}}]}]}";
    try {
      gw::parse_chat_request(gw::parse_json_body(body), limits());
    } catch (const gw::api_error& e) {
      return e;
    }
    return std::nullopt;
  };
  auto bad = error(R"("{\"a\": ")");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->param == "messages[1].tool_calls[0].function.arguments");
  auto wrong = error("[1]");
  REQUIRE(wrong);
  CHECK(wrong->param == "messages[1].tool_calls[0].function.arguments");
  CHECK_FALSE(error(R"("{\"b\": 1, \"a\": 2}")"));
  CHECK_FALSE(error(R"("")"));
  CHECK_FALSE(error("null"));
  CHECK_FALSE(error(R"({"b": 1})"));

  const std::string ok = R"({"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[
    {"id":"c","type":"function","function":{"name":"f","arguments":"{\"b\": 1, \"a\": [2]}"}},
    {"id":"d","type":"function","function":{"name":"g","arguments":""}}]}]})";
  auto r = gw::parse_chat_request(gw::parse_json_body(ok), limits());
  CHECK(r.messages[0].tool_calls[0]["function"]["arguments"].dump() == R"({"b":1,"a":[2]})");
  CHECK(r.messages[0].tool_calls[1]["function"]["arguments"].dump() == "{}");
}
