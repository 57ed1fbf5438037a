// `actorserve chat-template --tokenizer DIR [--add-generation-prompt]`: reads an OpenAI-style
// {"messages": [...], "tools": [...]} object on stdin and prints the prompt the model's chat
// template makes of it, byte for byte what transformers' apply_chat_template(tokenize=False)
// gives. Bad JSON and template errors go to stderr with exit status 1.

#include "gateway/cli/command.hpp"
#include "model/chat_template/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>

namespace actorserve::cli {
namespace {

struct chat_template_args {
  std::string tokenizer_dir;
  bool add_generation_prompt = false;
  std::string template_name;
};

int run_chat_template(const chat_template_args& a) {
  namespace ct = actorserve::chat_template;
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::ordered_json body;
  try {
    body = nlohmann::ordered_json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "actorserve chat-template: error: stdin is not valid JSON: " << e.what() << "\n";
    return 1;
  }
  if (ct::json_nested_deeper_than(body, ct::max_value_depth)) {
    std::cerr << "actorserve chat-template: error: stdin JSON is nested deeper than " << ct::max_value_depth
              << " levels\n";
    return 1;
  }
  if (!body.is_object() || !body.contains("messages") || !body["messages"].is_array()) {
    std::cerr << "actorserve chat-template: error: stdin must be a JSON object with a \"messages\" array\n";
    return 1;
  }
  ct::chat_request request;
  request.messages = body["messages"];
  if (body.contains("tools"))
    request.tools = body["tools"];
  // vLLM's name for extra template variables (enable_thinking, ...).
  if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null())
    request.extra_context = body["chat_template_kwargs"];
  request.add_generation_prompt = a.add_generation_prompt;

  auto config = ct::load_chat_template_config(a.tokenizer_dir);
  bool has_tools = request.tools.is_array() && !request.tools.empty();
  auto tmpl = ct::compiled_template::parse(config.select(a.template_name, has_tools));
  std::cout << ct::render_chat(tmpl, request, config.special_tokens);
  std::cout.flush();
  return 0;
}

command_registrar chat_template_command{
    "chat-template", "render a chat (JSON on stdin) with a tokenizer's chat template, as transformers does",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<chat_template_args>();
      app.add_option("--tokenizer", a->tokenizer_dir, "folder with tokenizer_config.json (a model folder)")->required();
      app.add_flag("--add-generation-prompt", a->add_generation_prompt, "end with the assistant turn's opening");
      app.add_option("--template", a->template_name, "name of one of several templates (e.g. tool_use)");
      return [a] { return run_chat_template(*a); };
    }};

} // namespace
} // namespace actorserve::cli
