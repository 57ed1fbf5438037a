// Loading chat templates and special tokens from a tokenizer folder, as transformers does.
#include "model/chat_template/chat_template.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <fstream>

namespace ct = actorserve::chat_template;
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

} // namespace

TEST_CASE("chat_template as a string, special tokens as strings or AddedToken objects", "[chat_template]") {
  actorserve::testing::temp_dir dir;
  write(dir.path() / "tokenizer_config.json", R"({
    "chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}|{{ pad_token }}|{{ unk_token is defined }}|{{ additional_special_tokens }}",
    "bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false},
    "eos_token": "<E>", "pad_token": {"content": "<P>"}, "unk_token": null, "sep_token": "",
    "additional_special_tokens": ["<x>", {"content": "<y>"}]})");
  auto config = ct::load_chat_template_config(dir.path());
  REQUIRE(config.templates.size() == 1);
  CHECK(config.templates[0].first == "default");
  CHECK(config.special_tokens == ojson::parse(R"({"bos_token": "<B>", "eos_token": "<E>", "pad_token": "<P>",
                                                  "additional_special_tokens": ["<x>", "<y>"]})"));
  ct::chat_request request;
  request.messages = ojson::parse(R"([{"role": "user", "content": "hi"}])");
  CHECK(ct::render_chat(ct::compiled_template::parse(config.select("", false)), request, config.special_tokens) ==
        "<B>hi<E>|<P>|False|['<x>', '<y>']");
}

TEST_CASE("named templates: default, tool_use when tools are passed, or by name", "[chat_template]") {
  actorserve::testing::temp_dir dir;
  write(dir.path() / "tokenizer_config.json", R"({"chat_template": [
    {"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}]})");
  auto config = ct::load_chat_template_config(dir.path());
  CHECK(config.select("", false) == "D");
  CHECK(config.select("", true) == "T");
  CHECK(config.select("rag", true) == "R");
  CHECK_THROWS_WITH(config.select("nope", false), Catch::Contains("no chat template named 'nope'"));

  actorserve::testing::temp_dir no_default;
  write(no_default.path() / "tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  auto only_tools = ct::load_chat_template_config(no_default.path());
  CHECK(only_tools.select("", true) == "T");
  CHECK_THROWS_AS(only_tools.select("", false), actorserve::model_error);
}

TEST_CASE("chat_template.jinja and additional_chat_templates/ override tokenizer_config.json", "[chat_template]") {
  actorserve::testing::temp_dir dir;
  write(dir.path() / "tokenizer_config.json", R"({"chat_template": "old", "eos_token": "</s>"})");
  write(dir.path() / "chat_template.jinja", "new {{ eos_token }}\n");
  write(dir.path() / "additional_chat_templates" / "tool_use.jinja", "tools");
  auto config = ct::load_chat_template_config(dir.path());
  CHECK(config.select("", false) == "new {{ eos_token }}\n");
  CHECK(config.select("", true) == "tools");

  actorserve::testing::temp_dir jinja_only; // no tokenizer_config.json at all
  write(jinja_only.path() / "chat_template.jinja", "J");
  CHECK(ct::load_chat_template_config(jinja_only.path()).select("", false) == "J");
}

TEST_CASE("malformed tokenizer folders are refused with the file named", "[chat_template]") {
  actorserve::testing::temp_dir empty;
  CHECK_THROWS_WITH(ct::load_chat_template_config(empty.path()), Catch::Contains("no chat template"));

  actorserve::testing::temp_dir bad_json;
  write(bad_json.path() / "tokenizer_config.json", "{\"chat_template\": ");
  CHECK_THROWS_WITH(ct::load_chat_template_config(bad_json.path()), Catch::Contains("tokenizer_config.json"));

  actorserve::testing::temp_dir bad_type;
  write(bad_type.path() / "tokenizer_config.json", R"({"chat_template": 5})");
  CHECK_THROWS_WITH(ct::load_chat_template_config(bad_type.path()), Catch::Contains("chat_template must be"));

  actorserve::testing::temp_dir bad_entry;
  write(bad_entry.path() / "tokenizer_config.json", R"({"chat_template": [{"name": "x"}]})");
  CHECK_THROWS_AS(ct::load_chat_template_config(bad_entry.path()), actorserve::model_error);

  actorserve::testing::temp_dir bad_token;
  write(bad_token.path() / "tokenizer_config.json", R"({"chat_template": "x", "bos_token": 5})");
  CHECK_THROWS_WITH(ct::load_chat_template_config(bad_token.path()), Catch::Contains("bos_token"));
}

TEST_CASE("render_chat passes tools as None when absent and refuses overriding its own variables", "[chat_template]") {
  auto tmpl = ct::compiled_template::parse("{{ tools is none }}/{{ documents is none }}/{{ add_generation_prompt }}/{{ x }}");
  ct::chat_request request;
  CHECK_THROWS_WITH(ct::render_chat(tmpl, request, ojson::object()), Catch::Contains("empty conversation"));
  request.messages = ojson::parse(R"([{"role": "user", "content": "hi"}])");
  request.extra_context = {{"x", 1}};
  CHECK(ct::render_chat(tmpl, request, ojson::object()) == "True/True/False/1");
  request.tools = ojson::array();
  request.add_generation_prompt = true;
  CHECK(ct::render_chat(tmpl, request, ojson::object()) == "False/True/True/1");
  request.extra_context = {{"messages", 1}};
  CHECK_THROWS_AS(ct::render_chat(tmpl, request, ojson::object()), ct::template_error);
  CHECK(ct::render_chat_template("{{ messages[0].content }}{{ eos_token }}", ojson::parse(R"([{"content": "a"}])"),
                                 nullptr, false, ojson{{"eos_token", "</s>"}}) == "a</s>");
}
