// `actorserve chat-template` end to end: the real binary, JSON on stdin, the prompt on stdout,
// errors on stderr with exit status 1.
#include "tests/chat_template/reference_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace actorserve::testing::chat;

namespace {

struct cli_result {
  int status = -1;
  std::string out;
  std::string err;
};

cli_result run_cli(const std::string& args, const std::string& input) {
  actorserve::testing::temp_dir dir;
  auto in_path = dir.path() / "stdin";
  auto err_path = dir.path() / "stderr";
  std::ofstream(in_path, std::ios::binary) << input;
  std::string cmd = actorserve::testing::executable().string() + " chat-template " + args + " < '" + in_path.string() +
                    "' 2> '" + err_path.string() + "'";
  auto run = actorserve::testing::run_command(cmd);
  cli_result r;
  r.status = run.status;
  r.out = std::move(run.out);
  r.err = read_file(err_path);
  return r;
}

} // namespace

TEST_CASE("actorserve chat-template prints what the library renders", "[chat_template][cli]") {
  auto qwen3 = actorserve::testing::cache_dir() / "tokenizers" / "qwen3";
  INFO("run scripts/fetch-test-assets.sh to fetch " << qwen3);
  REQUIRE(std::filesystem::exists(qwen3 / "tokenizer_config.json"));
  ojson conversations = read_json(fixtures() / "conversations.json");
  ojson conversation;
  for (const auto& c : conversations)
    if (c["name"] == "tool_call_object_args")
      conversation = c;
  REQUIRE(conversation.is_object());
  ojson body = {{"messages", conversation["messages"]}, {"tools", conversation["tools"]}};

  auto config = ct::load_chat_template_config(qwen3);
  auto tmpl = ct::compiled_template::parse(config.select("", true));
  for (bool agp : {false, true}) {
    ct::chat_request request;
    request.messages = body["messages"];
    request.tools = body["tools"];
    request.add_generation_prompt = agp;
    auto r = run_cli("--tokenizer '" + qwen3.string() + "'" + (agp ? " --add-generation-prompt" : ""), body.dump());
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == ct::render_chat(tmpl, request, config.special_tokens));
  }
  CHECK(run_cli("--tokenizer '" + qwen3.string() + "' --add-generation-prompt", body.dump()).out.find("<tool_call>") !=
        std::string::npos);

  // chat_template_kwargs reach the template (Qwen3's enable_thinking).
  ojson thinking_off = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"chat_template_kwargs", {{"enable_thinking", false}}}};
  auto r = run_cli("--tokenizer '" + qwen3.string() + "' --add-generation-prompt", thinking_off.dump());
  CHECK(r.status == 0);
  CHECK(r.out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST_CASE("actorserve chat-template reports bad input and template errors on stderr with status 1",
          "[chat_template][cli]") {
  actorserve::testing::temp_dir dir;
  std::ofstream(dir.path() / "tokenizer_config.json")
      << R"({"chat_template": "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok"})";
  std::string folder = "--tokenizer '" + dir.path().string() + "'";

  auto ok = run_cli(folder, R"({"messages": [{"role": "user", "content": "x"}]})");
  CHECK(ok.status == 0);
  CHECK(ok.out == "ok");

  auto raised = run_cli(folder, R"({"messages": [{"role": "system", "content": "x"}]})");
  CHECK(raised.status == 1);
  CHECK(raised.out.empty());
  CHECK_THAT(raised.err, Catch::Contains("System role not supported"));

  auto bad_json = run_cli(folder, "{\"messages\": [");
  CHECK(bad_json.status == 1);
  CHECK_THAT(bad_json.err, Catch::Contains("not valid JSON"));

  auto deep = run_cli(folder, "{\"messages\": [" + std::string(200000, '[') + std::string(200000, ']') + "]}");
  CHECK(deep.status == 1);
  CHECK_THAT(deep.err, Catch::Contains("nested deeper"));

  auto no_messages = run_cli(folder, R"({"prompt": "x"})");
  CHECK(no_messages.status == 1);
  CHECK_THAT(no_messages.err, Catch::Contains("messages"));

  actorserve::testing::temp_dir broken;
  std::ofstream(broken.path() / "tokenizer_config.json") << R"({"chat_template": "{% for x in y %}"})";
  auto syntax = run_cli("--tokenizer '" + broken.path().string() + "'", R"({"messages": []})");
  CHECK(syntax.status == 1);
  CHECK_THAT(syntax.err, Catch::Contains("line 1"));

  actorserve::testing::temp_dir empty;
  auto none = run_cli("--tokenizer '" + empty.path().string() + "'", R"({"messages": []})");
  CHECK(none.status == 1);
  CHECK_THAT(none.err, Catch::Contains("no chat template"));
}

TEST_CASE("actorserve chat-template keeps the client's key order in tools and tool calls, as jinja2 does",
          "[chat_template][cli]") {
  // tool_key_order's tool definitions and call arguments are deliberately not in sorted order.
  use_utc();
  ojson conversation = conversation_named("tool_key_order");
  REQUIRE(conversation.is_object());
  ojson body = {{"messages", conversation["messages"]}, {"tools", conversation["tools"]}};
  for (const std::string name : {"qwen3", "llama3", "mistral_nemo"}) {
    INFO(name);
    auto folder = actorserve::testing::cache_dir() / "tokenizers" / name;
    REQUIRE(std::filesystem::exists(folder / "tokenizer_config.json"));
    ojson reference = run_reference("cases --only tool_key_order --conversations " +
                                    quoted(fixtures() / "conversations.json") + " " + quoted(folder));
    REQUIRE(reference[name].size() == 2);
    for (const auto& expected : reference[name]) {
      const bool agp = expected["add_generation_prompt"].get<bool>();
      REQUIRE(expected.contains("output"));
      auto r = run_cli("--tokenizer '" + folder.string() + "'" + (agp ? " --add-generation-prompt" : ""), body.dump());
      INFO(r.err);
      CHECK(r.status == 0);
      CHECK(r.out == expected["output"].get<std::string>());
      if (name != "llama3") // Llama 3's template prints neither tools nor tool calls
        CHECK_THAT(r.out, Catch::Contains(R"("arguments": {"unit": "celsius", "city": "Paris")"));
    }
  }
}
