#include "gateway/text_frontend.hpp"

#include "actors/engine.hpp"
#include "actors/tokenizer_detokenizer.hpp"
#include "model/chat_template/chat_template.hpp"
#include "model/config.hpp"
#include "model/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

namespace actorserve::gateway {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::optional<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw model_error(path.string() + ": " + e.what());
  }
}

// vLLM's --generation-config auto: these keys of generation_config.json become the defaults of
// requests that do not set them.
sampling_params generation_defaults(const fs::path& dir) {
  sampling_params p;
  auto j = read_json(dir / "generation_config.json");
  if (!j || !j->is_object())
    return p;
  auto number = [&](const char* key, float& out) {
    if (j->contains(key) && (*j)[key].is_number())
      out = (*j)[key].get<float>();
  };
  number("temperature", p.temperature);
  number("top_p", p.top_p);
  number("min_p", p.min_p);
  number("repetition_penalty", p.repetition_penalty);
  if (j->contains("top_k") && (*j)["top_k"].is_number_integer())
    p.top_k = (*j)["top_k"].get<int32_t>();
  return p;
}

ordered_json message_json(const chat_message& m) {
  ordered_json j = ordered_json::object();
  j["role"] = m.role;
  j["content"] = m.has_content ? ordered_json(m.content) : ordered_json(nullptr);
  if (!m.name.empty())
    j["name"] = m.name;
  if (!m.tool_call_id.empty())
    j["tool_call_id"] = m.tool_call_id;
  if (!m.tool_calls.is_null())
    j["tool_calls"] = m.tool_calls;
  // Under both names, as vLLM passes it to templates: Qwen3's reads reasoning_content.
  if (m.reasoning) {
    j["reasoning"] = *m.reasoning;
    j["reasoning_content"] = *m.reasoning;
  }
  return j;
}

// tokenizer_config.json's special tokens as templates see them (strings, or AddedToken objects'
// content): what a --chat-template needs when the folder has no template of its own.
ordered_json special_tokens_of(const fs::path& dir) {
  ordered_json out = ordered_json::object();
  auto j = read_json(dir / "tokenizer_config.json");
  if (!j || !j->is_object())
    return out;
  auto text = [](const nlohmann::json& v) -> std::string {
    if (v.is_string())
      return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return {};
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (j->contains(key) && !text((*j)[key]).empty())
      out[key] = text((*j)[key]);
  return out;
}

// The folder's templates, or only `override_text` (--chat-template) when one is given.
std::optional<chat_template::chat_template_config> chat_config_of(const fs::path& dir, const std::string& override_text) {
  std::optional<chat_template::chat_template_config> config;
  try {
    config = chat_template::load_chat_template_config(dir);
  } catch (const model_error& e) {
    if (override_text.empty()) {
      spdlog::warn("{}: no usable chat template ({}); /v1/chat/completions will answer 400", dir.string(), e.what());
      return std::nullopt;
    }
    config.emplace();
    config->special_tokens = special_tokens_of(dir);
  }
  if (!override_text.empty())
    config->templates = {{"default", override_text}};
  return config;
}

class model_text_frontend : public text_frontend {
public:
  model_text_frontend(const fs::path& dir, bool use_generation_config, const std::string& chat_template)
      : tok_(tokenizer::from_dir(dir)), vocab_size_(load_model_config(dir).vocab_size),
        defaults_(use_generation_config ? generation_defaults(dir) : sampling_params{}),
        // The tokenizer's incremental detokenizer: exact streamed text for byte-fallback runs and
        // for decoders that edit the start of the text (Metaspace), where decoding a window of
        // recent ids would not be.
        detok_(make_detokenizer(tok_)), chat_config_(chat_config_of(dir, chat_template)) {
    if (std::string w = vocabulary_coverage_warning(int64_t(tok_.vocab_size()), vocab_size_); !w.empty())
      spdlog::warn("{}: {}", dir.string(), w);
  }

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override {
    std::vector<uint32_t> ids;
    try {
      ids = tok_.encode(text, add_special_tokens);
    } catch (const model_error& e) {
      throw invalid_request(std::string("The prompt cannot be tokenized: ") + e.what(), "prompt");
    }
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    return tok_.decode(ids, skip_special_tokens);
  }

  std::string token_text(int32_t token) const override { return tok_.decode(std::span<const int32_t>(&token, 1)); }

  std::string vocab_token(int32_t token) const override {
    if (token >= 0)
      if (auto piece = tok_.id_to_token(uint32_t(token)))
        return *piece;
    return token_text(token);
  }

  std::string apply_chat_template(const chat_request& r) const override {
    if (!chat_config_)
      throw invalid_request("This model has no chat template (tokenizer_config.json has no chat_template); use "
                            "/v1/completions.",
                            "messages", "no_chat_template");
    chat_template::chat_request c;
    for (const chat_message& m : r.messages)
      c.messages.push_back(message_json(m));
    // tool_choice "none" means the model must not see the tools (as vLLM does).
    const bool pass_tools = r.tools.is_array() && !(r.tool_choice.is_string() && r.tool_choice == "none");
    if (pass_tools)
      c.tools = r.tools;
    c.add_generation_prompt = r.add_generation_prompt;
    if (r.chat_template_kwargs.is_object())
      c.extra_context = r.chat_template_kwargs;
    try {
      const chat_template::compiled_template& t = compiled(chat_config_->select("", pass_tools));
      std::string text = chat_template::render_chat(t, c, chat_config_->special_tokens);
      if (r.continue_final_message)
        text = cut_after_final_message(text, r.messages.back().content);
      return text;
    } catch (const chat_template::template_error& e) {
      throw invalid_request(std::string("The chat template rejected the messages: ") + e.what(), "messages",
                            "chat_template_error");
    } catch (const model_error& e) {
      throw invalid_request(std::string("The chat template cannot be applied: ") + e.what(), "messages",
                            "chat_template_error");
    }
  }

  bool chat_adds_special_tokens() const override { return false; } // templates write BOS themselves
  int64_t vocab_size() const override { return vocab_size_; }
  sampling_params default_sampling() const override { return defaults_; }
  std::shared_ptr<const detokenizer> engine_detokenizer() const override { return detok_; }

private:
  // transformers' continue_final_message: the prompt ends right after the last message's text,
  // so the model continues it instead of closing the turn.
  static std::string cut_after_final_message(const std::string& text, const std::string& final_content) {
    std::string content = final_content;
    while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back())))
      content.pop_back();
    const size_t at = content.empty() ? std::string::npos : text.rfind(content);
    if (at == std::string::npos)
      throw invalid_request("continue_final_message: the final message's text is not in the rendered prompt.",
                            "continue_final_message");
    return text.substr(0, at + content.size());
  }

  // Templates are parsed once, on first use, and rendered from any thread afterwards.
  const chat_template::compiled_template& compiled(const std::string& source) const {
    std::lock_guard lock(mutex_);
    auto it = compiled_.find(source);
    if (it == compiled_.end())
      it = compiled_.emplace(source, chat_template::compiled_template::parse(source)).first;
    return it->second;
  }

  tokenizer tok_;
  int64_t vocab_size_;
  sampling_params defaults_;
  std::shared_ptr<const detokenizer> detok_;
  std::optional<chat_template::chat_template_config> chat_config_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, chat_template::compiled_template> compiled_;
};

} // namespace

std::unique_ptr<text_frontend> load_text_frontend(const fs::path& model_dir, bool use_generation_config,
                                                  const std::string& chat_template) {
  return std::make_unique<model_text_frontend>(model_dir, use_generation_config, chat_template);
}

std::string read_chat_template_arg(const std::string& arg) {
  std::string text;
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    std::ifstream in(arg, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in)
      throw model_error("--chat-template " + arg + ": cannot read the file");
    text = buffer.str();
  } else if (arg.find_first_of("{}\n") != std::string::npos) {
    text = arg;
  } else {
    throw model_error("--chat-template " + arg +
                      ": no such file, and it is not a template either (a Jinja template has '{', '}' or a newline)");
  }
  if (text.empty())
    throw model_error("--chat-template " + arg + ": the template is empty");
  try {
    chat_template::compiled_template::parse(text);
  } catch (const model_error& e) {
    throw model_error("--chat-template " + (text == arg ? std::string("(the text given)") : arg) +
                      ": the template does not compile: " + e.what());
  }
  return text;
}

std::string vocabulary_coverage_warning(int64_t tokenizer_size, int64_t model_vocab_rows) {
  const int64_t uncovered = model_vocab_rows - tokenizer_size;
  if (uncovered <= 128 || uncovered <= model_vocab_rows / 100)
    return {};
  return "the tokenizer has " + std::to_string(tokenizer_size) + " tokens but the model " +
         std::to_string(model_vocab_rows) + " vocabulary rows: the " + std::to_string(uncovered) +
         " ids without a token decode to no text (is tokenizer.json the model's own?)";
}

} // namespace actorserve::gateway
