#include "model/chat_template/chat_template.hpp"

#include "model/chat_template/parser.hpp"
#include "model/chat_template/pystring.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace actorserve::chat_template {

namespace fs = std::filesystem;

compiled_template compiled_template::parse(std::string_view source, const template_limits& limits) {
  if (source.size() > limits.max_template_bytes)
    throw template_error(template_error_kind::limit, "template of " + std::to_string(source.size()) +
                                                         " bytes is larger than the limit of " +
                                                         std::to_string(limits.max_template_bytes));
  if (!py::is_valid_utf8(source))
    throw template_error(template_error_kind::syntax, "template is not valid UTF-8");
  compiled_template t;
  t.body_ = std::make_shared<const node_list>(parse_template(source, limits.max_nesting_depth));
  return t;
}

std::string compiled_template::render(const nlohmann::ordered_json& context, const render_options& options) const {
  if (!context.is_object())
    throw template_error(template_error_kind::type, "the render context must be a JSON object");
  if (json_nested_deeper_than(context, max_value_depth + 1))
    throw template_error(template_error_kind::limit,
                         "render context nested deeper than " + std::to_string(max_value_depth) + " levels");
  std::vector<std::pair<std::string, value>> variables;
  for (const auto& [name, v] : context.items())
    variables.emplace_back(name, from_json(v));
  return render(std::move(variables), options);
}

std::string compiled_template::render(std::vector<std::pair<std::string, value>> variables,
                                      const render_options& options) const {
  auto root = std::make_shared<frame>();
  for (auto& [name, v] : variables)
    root->set(name, std::move(v));
  interpreter in(options);
  return in.render(*body_, std::move(root));
}

const std::string& chat_template_config::select(const std::string& name, bool has_tools) const {
  auto find = [&](const std::string& wanted) -> const std::string* {
    for (const auto& [n, text] : templates)
      if (n == wanted)
        return &text;
    return nullptr;
  };
  if (!name.empty()) {
    if (const auto* t = find(name))
      return *t;
    std::string names;
    for (const auto& [n, _] : templates)
      names += (names.empty() ? "" : ", ") + n;
    throw model_error("no chat template named '" + name + "' (this tokenizer has: " + names + ")");
  }
  if (has_tools)
    if (const auto* t = find("tool_use"))
      return *t;
  if (const auto* t = find("default"))
    return *t;
  throw model_error("this tokenizer has several chat templates and none is named 'default'; choose one by name");
}

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw model_error("cannot read " + path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// A special token is a string or an AddedToken object {"content": ...} (optionally with
/// "__type": "AddedToken"); transformers hands templates its content.
std::optional<std::string> token_text(const nlohmann::ordered_json& j, const fs::path& file, const std::string& key) {
  if (j.is_null())
    return std::nullopt;
  if (j.is_string())
    return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  throw model_error(file.string() + ": '" + key + "' is neither a string nor an AddedToken object");
}

} // namespace

chat_template_config load_chat_template_config(const fs::path& tokenizer_dir) {
  chat_template_config config;
  fs::path config_path = tokenizer_dir / "tokenizer_config.json";
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (fs::exists(config_path)) {
    try {
      j = nlohmann::ordered_json::parse(read_text(config_path));
    } catch (const nlohmann::json::exception& e) {
      throw model_error(config_path.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object())
      throw model_error(config_path.string() + ": expected a JSON object");
  }
  auto set_template = [&](const std::string& name, std::string text) {
    for (auto& [n, t] : config.templates)
      if (n == name) {
        t = std::move(text);
        return;
      }
    config.templates.emplace_back(name, std::move(text));
  };
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const auto& ct = j["chat_template"];
    if (ct.is_string()) {
      set_template("default", ct.get<std::string>());
    } else if (ct.is_array()) {
      for (const auto& entry : ct) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
            !entry["template"].is_string())
          throw model_error(config_path.string() + ": chat_template list entries must be {\"name\": ..., \"template\": ...}");
        set_template(entry["name"].get<std::string>(), entry["template"].get<std::string>());
      }
    } else {
      throw model_error(config_path.string() + ": chat_template must be a string or a list of named templates");
    }
  }
  if (fs::path jinja = tokenizer_dir / "chat_template.jinja"; fs::exists(jinja))
    set_template("default", read_text(jinja));
  if (fs::path extra = tokenizer_dir / "additional_chat_templates"; fs::is_directory(extra)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(extra))
      if (entry.path().extension() == ".jinja")
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      set_template(f.stem().string(), read_text(f));
  }
  if (config.templates.empty())
    throw model_error("no chat template in " + tokenizer_dir.string() +
                      " (tokenizer_config.json has no 'chat_template' and there is no chat_template.jinja)");

  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!j.contains(key))
      continue;
    if (auto text = token_text(j[key], config_path, key); text && !text->empty())
      config.special_tokens[key] = *text;
  }
  if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& t : j["additional_special_tokens"])
      if (auto text = token_text(t, config_path, "additional_special_tokens"))
        list.push_back(*text);
    if (!list.empty())
      config.special_tokens["additional_special_tokens"] = std::move(list);
  }
  return config;
}

std::string render_chat(const compiled_template& tmpl, const chat_request& request,
                        const nlohmann::ordered_json& special_tokens, const render_options& options) {
  if (!request.messages.is_array())
    throw template_error(template_error_kind::type, "'messages' must be a list of messages");
  // transformers refuses before rendering (some templates would render a bare generation prompt)
  if (request.messages.empty())
    throw template_error(template_error_kind::type,
                         "Cannot apply chat template to an empty conversation. Provide at least one message.");
  if (!request.tools.is_null() && !request.tools.is_array())
    throw template_error(template_error_kind::type, "'tools' must be a list of tool definitions");
  if (!request.extra_context.is_object())
    throw template_error(template_error_kind::type, "extra template variables must be a JSON object");
  for (const auto* part : {&request.messages, &request.tools, &request.extra_context})
    if (json_nested_deeper_than(*part, max_value_depth))
      throw template_error(template_error_kind::limit,
                           "request JSON nested deeper than " + std::to_string(max_value_depth) + " levels");
  // Converted straight from the request: a long conversation is not copied as JSON first.
  std::vector<std::pair<std::string, value>> variables;
  variables.emplace_back("messages", from_json(request.messages));
  variables.emplace_back("tools", from_json(request.tools));
  variables.emplace_back("documents", value::none());
  variables.emplace_back("add_generation_prompt", value(request.add_generation_prompt));
  for (const auto& [key, v] : special_tokens.items())
    variables.emplace_back(key, from_json(v));
  for (const auto& [key, v] : request.extra_context.items()) {
    if (key == "messages" || key == "tools" || key == "documents" || key == "add_generation_prompt")
      throw template_error(template_error_kind::type, "extra template variables may not set '" + key + "'");
    variables.emplace_back(key, from_json(v));
  }
  return tmpl.render(std::move(variables), options);
}

std::string render_chat_template(std::string_view template_text, const nlohmann::ordered_json& messages,
                                 const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                 const nlohmann::ordered_json& special_tokens,
                                 const nlohmann::ordered_json& extra_context, const render_options& options) {
  chat_request request;
  request.messages = messages;
  request.tools = tools;
  request.add_generation_prompt = add_generation_prompt;
  request.extra_context = extra_context;
  return render_chat(compiled_template::parse(template_text, options.limits), request, special_tokens, options);
}

} // namespace actorserve::chat_template
