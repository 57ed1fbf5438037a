// serve --chat-template: a file or the template text replaces the model's template for the
// chat path and /tokenize; a template that does not compile or a missing file is refused.
#include "gateway/tokenize_api.hpp"
#include "gateway/text_frontend.hpp"
#include "model/error.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace actorserve;
using namespace actorserve::gateway;
namespace fs = std::filesystem;

namespace {

const fs::path demo_dir() { return actorserve::testing::source_dir() / "models" / "demo"; }

chat_request one_user_message(const std::string& text) {
  chat_request r;
  chat_message m;
  m.role = "user";
  m.content = text;
  r.messages.push_back(m);
  return r;
}

const std::string custom = "{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}\n{% endfor %}"
                           "{% if add_generation_prompt %}[BOT] {% endif %}";

std::string error_text(const std::string& arg) {
  try {
    read_chat_template_arg(arg);
  } catch (const model_error& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("serve chat-template flag: takes a file or the text itself", "[gateway][chat_template_arg]") {
  actorserve::testing::temp_dir tmp;
  const fs::path file = tmp.path() / "custom.jinja";
  std::ofstream(file) << custom;
  CHECK(read_chat_template_arg(file.string()) == custom);
  CHECK(read_chat_template_arg(custom) == custom);
}

TEST_CASE("serve chat-template flag: refuses a missing file and a template that does not compile", "[gateway][chat_template_arg]") {
  CHECK_THAT(error_text("/no/such/template.jinja"), Catch::Contains("no such file"));
  const std::string broken = error_text("{% for m in messages %}{{ m['content'] }}");
  CHECK_THAT(broken, Catch::Contains("does not compile"));
  CHECK_THAT(broken, Catch::Contains("(the text given)"));
  actorserve::testing::temp_dir tmp;
  const fs::path file = tmp.path() / "broken.jinja";
  std::ofstream(file) << "{{ messages[0]['content'] ";
  CHECK_THAT(error_text(file.string()), Catch::Contains(file.string() + ": the template does not compile"));
  std::ofstream(tmp.path() / "empty.jinja");
  CHECK_THAT(error_text((tmp.path() / "empty.jinja").string()), Catch::Contains("empty"));
}

TEST_CASE("serve chat-template flag: replaces the model's template for chat and /tokenize", "[gateway][chat_template_arg]") {
  const auto model = load_text_frontend(demo_dir());
  const auto replaced = load_text_frontend(demo_dir(), true, custom);
  const chat_request chat = one_user_message("hi");
  CHECK(model->apply_chat_template(chat) == "<|bos|><|user|>\nhi<|end|>\n<|assistant|>\n");
  CHECK(replaced->apply_chat_template(chat) == "<|bos|>[USER] hi\n[BOT] ");
  request_limits limits;
  limits.model_names = {"demo"};
  const auto body = parse_json_body(R"({"messages": [{"role": "user", "content": "hi"}]})");
  const auto ids = nlohmann::json::parse(tokenize_response(body, limits, *replaced, 64))["tokens"];
  CHECK(ids.get<std::vector<int32_t>>() == replaced->encode("<|bos|>[USER] hi\n[BOT] ", false));
}

TEST_CASE("serve chat-template flag: works for a model folder without a template", "[gateway][chat_template_arg]") {
  actorserve::testing::temp_dir tmp;
  fs::copy_file(demo_dir() / "tokenizer.json", tmp.path() / "tokenizer.json");
  fs::copy_file(demo_dir() / "config.json", tmp.path() / "config.json");
  nlohmann::json config = nlohmann::json::parse(std::ifstream(demo_dir() / "tokenizer_config.json"));
  config.erase("chat_template");
  std::ofstream(tmp.path() / "tokenizer_config.json") << config.dump();
  const chat_request chat = one_user_message("hi");
  CHECK_THROWS(load_text_frontend(tmp.path())->apply_chat_template(chat)); // no template: 400
  CHECK(load_text_frontend(tmp.path(), true, custom)->apply_chat_template(chat) == "<|bos|>[USER] hi\n[BOT] ");
}
