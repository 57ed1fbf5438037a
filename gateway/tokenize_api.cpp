#include "gateway/tokenize_api.hpp"

#include "gateway/json_fields.hpp"
#include "model/error.hpp"

#include <limits>

namespace actorserve::gateway {
namespace {

using json = nlohmann::ordered_json;

void require_object(const json& body) {
  if (!body.is_object())
    throw invalid_request("The request body must be a JSON object, but got " + json_kind(body) + " instead.");
}

std::vector<int32_t> tokenize_messages(const json& body, const json_fields& f, const request_limits& limits,
                                       const text_frontend& frontend) {
  request_limits template_only = limits;
  template_only.check_tool_choice = false; // nothing is generated: the tools are only rendered
  const chat_request chat = parse_chat_request(body, template_only);
  const bool add_special = f.boolean("add_special_tokens").value_or(frontend.chat_adds_special_tokens());
  return frontend.encode(frontend.apply_chat_template(chat), add_special);
}

} // namespace

std::string tokenize_response(const json& body, const request_limits& limits, const text_frontend& frontend,
                              int32_t max_model_len) {
  require_object(body);
  const json_fields f(body);
  resolve_model(body, limits);
  const bool has_prompt = f.has("prompt"), has_messages = f.has("messages");
  if (has_prompt == has_messages)
    throw invalid_request("Give either 'prompt' (a string) or 'messages' (a chat), not " +
                              std::string(has_prompt ? "both." : "neither."),
                          has_prompt ? "messages" : "prompt", has_prompt ? "invalid_value" : "missing_required_parameter");
  const bool return_strs = f.boolean("return_token_strs").value_or(false);
  std::vector<int32_t> ids;
  if (has_prompt) {
    auto prompt = f.string("prompt");
    if (!prompt)
      f.wrong_type("prompt", "a string");
    ids = frontend.encode(*prompt, f.boolean("add_special_tokens").value_or(true));
  } else {
    ids = tokenize_messages(body, f, limits, frontend);
  }
  json out = json::object();
  out["count"] = ids.size();
  out["max_model_len"] = max_model_len;
  out["tokens"] = ids;
  if (return_strs) {
    json strs = json::array();
    for (int32_t id : ids)
      strs.push_back(frontend.vocab_token(id));
    out["token_strs"] = std::move(strs);
  } else {
    out["token_strs"] = nullptr;
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string detokenize_response(const json& body, const request_limits& limits, const text_frontend& frontend) {
  require_object(body);
  const json_fields f(body);
  resolve_model(body, limits);
  const int64_t max_id = frontend.vocab_size() > 0 ? frontend.vocab_size() - 1 : std::numeric_limits<int32_t>::max();
  auto tokens = f.integers("tokens", 0, max_id, std::numeric_limits<size_t>::max());
  if (!tokens)
    throw invalid_request("Missing required parameter: 'tokens'.", "tokens", "missing_required_parameter");
  const std::vector<int32_t> ids(tokens->begin(), tokens->end());
  json out = json::object();
  try {
    out["prompt"] = frontend.decode(ids, false);
  } catch (const model_error& e) { // an id of the model's padded rows that the tokenizer lacks
    throw invalid_request(std::string("The tokens cannot be decoded: ") + e.what(), "tokens", "invalid_value");
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace actorserve::gateway
