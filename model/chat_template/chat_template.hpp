#pragma once
// Chat templates: turn OpenAI-style messages into the prompt text a model was trained on,
// exactly as Hugging Face transformers' `apply_chat_template(..., tokenize=False)` does:
// Python jinja2 semantics (trim_blocks, lstrip_blocks, loopcontrols, the immutable sandbox),
// transformers' tojson/raise_exception/strftime_now, and the special tokens of
// tokenizer_config.json as variables.
//
// Parse once (compiled_template), render per request; rendering never modifies the parsed
// template, so one compiled_template may be rendered from several threads at once.

#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/template_error.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actorserve::chat_template {

class compiled_template {
public:
  /// Throws template_error (syntax, with line and column; or limit, for an oversized source).
  static compiled_template parse(std::string_view source, const template_limits& limits = {});

  /// Renders with the members of `context` (a JSON object) as top-level variables.
  std::string render(const nlohmann::ordered_json& context, const render_options& options = {}) const;
  /// Renders with converted variables; a later variable of the same name wins.
  std::string render(std::vector<std::pair<std::string, value>> variables, const render_options& options = {}) const;

private:
  std::shared_ptr<const node_list> body_;
};

/// What a tokenizer folder says about chat formatting.
struct chat_template_config {
  /// (name, template source); a single template is named "default".
  std::vector<std::pair<std::string, std::string>> templates;
  /// bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token (strings,
  /// only those set) and additional_special_tokens (a list), as transformers passes them.
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();

  /// The template transformers would use: `name` when given; otherwise "tool_use" if tools
  /// are passed and such a template exists, else "default". Throws model_error if missing.
  const std::string& select(const std::string& name, bool has_tools) const;
};

/// Reads DIR/tokenizer_config.json (`chat_template` as a string or as a list of
/// {"name", "template"}), then DIR/chat_template.jinja (which replaces the default, as in
/// transformers >= 4.50) and DIR/additional_chat_templates/*.jinja. Throws model_error
/// when the folder has no chat template or the files are malformed.
chat_template_config load_chat_template_config(const std::filesystem::path& tokenizer_dir);

/// The variables apply_chat_template passes besides the special tokens.
struct chat_request {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools = nullptr; // None when absent, as transformers passes it
  bool add_generation_prompt = false;
  /// Extra template kwargs (enable_thinking, date_string ...); they override special tokens.
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
};

/// Renders `request` with `special_tokens` (see chat_template_config) as transformers does.
std::string render_chat(const compiled_template& tmpl, const chat_request& request,
                        const nlohmann::ordered_json& special_tokens, const render_options& options = {});

/// One-shot form: parse `template_text` and render it.
std::string render_chat_template(std::string_view template_text, const nlohmann::ordered_json& messages,
                                 const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                 const nlohmann::ordered_json& special_tokens,
                                 const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object(),
                                 const render_options& options = {});

} // namespace actorserve::chat_template
