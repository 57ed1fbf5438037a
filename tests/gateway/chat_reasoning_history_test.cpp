// An assistant's reasoning sent back in the chat history (`reasoning_content` or `reasoning`,
// what `serve --reasoning-parser` returned) reaches the chat template as vLLM passes it, and
// the real Qwen3 template re-emits it as <think>...</think> for the turns after the last user
// query. Checked through the gateway's chat path (request JSON -> parse_chat_request ->
// text_frontend) against Python's jinja2 (scripts/chat_template_reference.py) given the
// messages vLLM hands the template, and against the output without the field.
#include "gateway/openai_request.hpp"
#include "gateway/text_frontend.hpp"
#include "tests/chat_template/reference_support.hpp"
#include "tests/gateway/model_folder.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>

using namespace actorserve::testing::chat;
namespace gw = actorserve::gateway;
using actorserve::gateway::test::model_folder;

namespace {

const std::string thought = "The user wants Paris.\nI need the weather tool.";
const std::string prime_thought = "Divisors of 7 below 7: only 1.";

ojson weather_call() {
  return ojson::parse(R"([{"id":"call_1","type":"function",
    "function":{"name":"get_weather","arguments":{"city":"Paris"}}}])");
}

// Conversations as the template gets them; `reasoning` is added to every assistant turn when
// given (under both names, as vLLM's chat_utils passes it).
ojson conversations(const std::optional<std::string>& reasoning, const std::string& suffix) {
  auto assistant = [&](const std::string& content, const ojson& tool_calls, const std::string& text) {
    ojson m = {{"role", "assistant"}, {"content", content}};
    if (!tool_calls.is_null())
      m["tool_calls"] = tool_calls;
    if (reasoning) {
      m["reasoning"] = text;
      m["reasoning_content"] = text;
    }
    return m;
  };
  auto user = [](const std::string& content) { return ojson{{"role", "user"}, {"content", content}}; };
  ojson out = ojson::array();
  // The assistant turn after the last user query: a tool call the model reasoned about.
  out.push_back({{"name", "tool_turn" + suffix},
                 {"messages",
                  {user("Weather in Paris?"), assistant("", weather_call(), thought),
                   {{"role", "tool"}, {"content", "sunny"}, {"tool_call_id", "call_1"}}}}});
  // Before the last user query: the template drops the reasoning.
  out.push_back({{"name", "before_last_query" + suffix},
                 {"messages", {user("Is 7 prime?"), assistant("Yes.", nullptr, prime_thought), user("Sure?")}}});
  // The final message is the assistant's: it always gets a <think> block, empty without reasoning.
  out.push_back({{"name", "last_assistant" + suffix},
                 {"messages", {user("Is 7 prime?"), assistant("Yes.", nullptr, prime_thought)}}});
  return out;
}

// The same conversation as an OpenAI client sends it: tool call arguments as a JSON string,
// the reasoning under one name only.
std::string openai_body(ojson messages, const char* reasoning_field, bool add_generation_prompt) {
  for (auto& m : messages) {
    if (m.contains("reasoning")) {
      ojson text = m["reasoning"];
      m.erase("reasoning");
      m.erase("reasoning_content");
      m[reasoning_field] = text;
    }
    if (m.contains("tool_calls"))
      for (auto& call : m["tool_calls"])
        call["function"]["arguments"] = call["function"]["arguments"].dump();
  }
  return ojson{{"model", "m"}, {"messages", messages}, {"add_generation_prompt", add_generation_prompt}}.dump();
}

std::string replaced_once(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.replace(at, from.size(), to);
}

} // namespace

TEST_CASE("reasoning sent back in the history renders through the real Qwen3 template as jinja2 does",
          "[gateway][chat_template][reasoning]") {
  use_utc();
  actorserve::testing::temp_dir root;
  const auto folder = model_folder("qwen3", root.path());
  ojson all = conversations(thought, "");
  for (auto& c : conversations(std::nullopt, "_plain"))
    all.push_back(c);
  const auto conversations_file = root.path() / "conversations.json";
  std::ofstream(conversations_file) << all.dump();
  const ojson reference = run_reference("cases --conversations " + quoted(conversations_file) + " " + quoted(folder));
  REQUIRE(reference["qwen3"].size() == 2 * all.size());

  gw::request_limits limits;
  limits.model_names = {"m"};
  auto frontend = gw::load_text_frontend(folder);
  std::map<std::string, std::string> rendered; // "name agp" -> our output
  for (const auto& expected : reference["qwen3"]) {
    const std::string name = expected["conversation"];
    const bool agp = expected["add_generation_prompt"];
    INFO(name << " add_generation_prompt " << agp);
    REQUIRE(expected.contains("output"));
    ojson messages;
    for (const auto& c : all)
      if (c["name"] == name)
        messages = c["messages"];
    for (const char* field : {"reasoning_content", "reasoning"}) {
      INFO("sent as " << field);
      auto request = gw::parse_chat_request(gw::parse_json_body(openai_body(messages, field, agp)), limits);
      const std::string out = frontend->apply_chat_template(request);
      CHECK(out == expected["output"].get<std::string>());
      rendered[name + (agp ? " 1" : " 0")] = out;
    }
  }

  // What the comparison above means, spelled out on our outputs.
  for (const std::string agp : {" 0", " 1"}) {
    // The tool turn gains exactly the block the template writes, reasoning stripped of its
    // surrounding newlines, nothing else changes.
    CHECK(rendered["tool_turn" + agp] ==
          replaced_once(rendered["tool_turn_plain" + agp], "<|im_start|>assistant\n<tool_call>",
                        "<|im_start|>assistant\n<think>\n" + thought + "\n</think>\n\n<tool_call>"));
    // Before the last user query the reasoning is not shown to the model again.
    CHECK(rendered["before_last_query" + agp] == rendered["before_last_query_plain" + agp]);
    // The final assistant turn: the empty block the template writes without reasoning is filled.
    CHECK(rendered["last_assistant" + agp] ==
          replaced_once(rendered["last_assistant_plain" + agp], "<think>\n\n</think>\n\nYes.",
                        "<think>\n" + prime_thought + "\n</think>\n\nYes."));
  }
  CHECK_THAT(rendered["before_last_query 1"], !Catch::Contains("Divisors"));
}
