#include "gateway/openai_response.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <random>

namespace actorserve::gateway {
namespace {

using json = nlohmann::ordered_json;

// JSON has no -inf; vLLM reports impossible tokens as -9999.0 and so do we.
double finite_logprob(float lp) { return std::isfinite(lp) ? double(lp) : -9999.0; }

std::string dump(const json& j) {
  // Generated text may end mid-character or be any byte sequence: replace, never throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json stop_reason(const choice_output& c) {
  if (!c.stop_str.empty())
    return c.stop_str;
  if (c.stop_token >= 0)
    return c.stop_token;
  return nullptr;
}

json finish_json(finish_reason r, bool tools_called = false) {
  if (tools_called && (r == finish_reason::stop || r == finish_reason::length))
    return "tool_calls";
  std::string text = finish_reason_text(r);
  return text.empty() ? json(nullptr) : json(text);
}

json tool_calls_json(const std::vector<tool_call>& calls) {
  json list = json::array();
  for (const tool_call& c : calls)
    list.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return list;
}

json usage_json(const usage_totals& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s)
    out.push_back(int(c));
  return out;
}

// The legacy completions shape: parallel arrays, top_logprobs as {token: logprob} objects.
json completion_logprobs(const std::vector<token_logprob>& lps, const token_text_fn& token_text, size_t offset) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  for (const token_logprob& lp : lps) {
    std::string text = token_text(lp.token);
    tokens.push_back(text);
    token_logprobs.push_back(finite_logprob(lp.logprob));
    json alternatives = json::object();
    for (const auto& [token, value] : lp.top)
      alternatives[token_text(token)] = finite_logprob(value);
    alternatives[text] = finite_logprob(lp.logprob); // the chosen token is always listed
    top.push_back(std::move(alternatives));
    offsets.push_back(offset);
    offset += text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

// The chat shape: one entry per token with its bytes and a list of alternatives.
json chat_logprobs(const std::vector<token_logprob>& lps, const token_text_fn& token_text) {
  json content = json::array();
  for (const token_logprob& lp : lps) {
    std::string text = token_text(lp.token);
    json top = json::array();
    for (const auto& [token, value] : lp.top) {
      std::string alt = token_text(token);
      top.push_back({{"token", alt}, {"logprob", finite_logprob(value)}, {"bytes", bytes_of(alt)}});
    }
    content.push_back(
        {{"token", text}, {"logprob", finite_logprob(lp.logprob)}, {"bytes", bytes_of(text)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json envelope(const response_meta& meta, const char* object) {
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

} // namespace

std::string make_response_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = std::string(prefix) + "-";
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4)
      id += hex[v & 15];
  }
  return id;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string finish_reason_text(finish_reason r) {
  switch (r) {
  case finish_reason::stop: return "stop";
  case finish_reason::length: return "length";
  case finish_reason::abort: return "abort";
  case finish_reason::none: break;
  }
  return "";
}

std::string completion_response(const response_meta& meta, const std::vector<choice_output>& choices,
                                const usage_totals& usage, bool logprobs, const token_text_fn& token_text,
                                const std::vector<size_t>& text_offset_base) {
  json j = envelope(meta, "text_completion");
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const choice_output& c = choices[i];
    const size_t base = i < text_offset_base.size() ? text_offset_base[i] : 0;
    list.push_back({{"index", c.index},
                    {"text", c.text},
                    {"logprobs", logprobs ? completion_logprobs(c.logprobs, token_text, base) : json(nullptr)},
                    {"finish_reason", finish_json(c.finish)},
                    {"stop_reason", stop_reason(c)}});
  }
  j["choices"] = std::move(list);
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_chunk(const response_meta& meta, const choice_output& delta, bool logprobs,
                             const token_text_fn& token_text, size_t text_offset) {
  json j = envelope(meta, "text_completion");
  json choice = {{"index", delta.index},
                 {"text", delta.text},
                 {"logprobs", logprobs ? completion_logprobs(delta.logprobs, token_text, text_offset) : json(nullptr)},
                 {"finish_reason", finish_json(delta.finish)}};
  if (delta.finish != finish_reason::none)
    choice["stop_reason"] = stop_reason(delta);
  j["choices"] = json::array({std::move(choice)});
  if (meta.include_usage)
    j["usage"] = nullptr;
  return dump(j);
}

std::string chat_response(const response_meta& meta, const std::vector<choice_output>& choices,
                          const usage_totals& usage, bool logprobs, const token_text_fn& token_text) {
  json j = envelope(meta, "chat.completion");
  json list = json::array();
  for (const choice_output& c : choices) {
    // With tool calls or reasoning and no other text, content is null (as OpenAI and vLLM send it).
    const bool null_content = c.text.empty() && (!c.tool_calls.empty() || c.reasoning);
    json message = {{"role", "assistant"}, {"content", null_content ? json(nullptr) : json(c.text)}};
    if (meta.reasoning_fields) {
      const json reasoning = c.reasoning ? json(*c.reasoning) : json(nullptr);
      message["reasoning_content"] = reasoning; // DeepSeek's API and most clients read this one
      message["reasoning"] = reasoning;
    }
    message["refusal"] = nullptr;
    message["tool_calls"] = tool_calls_json(c.tool_calls);
    list.push_back({{"index", c.index},
                    {"message", std::move(message)},
                    {"logprobs", logprobs ? chat_logprobs(c.logprobs, token_text) : json(nullptr)},
                    {"finish_reason", finish_json(c.finish, c.tools_called)},
                    {"stop_reason", stop_reason(c)}});
  }
  j["choices"] = std::move(list);
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string chat_role_chunk(const response_meta& meta, int32_t index) {
  json j = envelope(meta, "chat.completion.chunk");
  j["choices"] = json::array({{{"index", index},
                               {"delta", {{"role", "assistant"}, {"content", ""}}},
                               {"logprobs", nullptr},
                               {"finish_reason", nullptr}}});
  if (meta.include_usage)
    j["usage"] = nullptr;
  return dump(j);
}

std::string chat_chunk(const response_meta& meta, const choice_output& delta, bool logprobs,
                       const token_text_fn& token_text) {
  json j = envelope(meta, "chat.completion.chunk");
  json d = json::object();
  const bool reasoning = delta.reasoning && !delta.reasoning->empty();
  if (reasoning) {
    d["reasoning_content"] = *delta.reasoning;
    d["reasoning"] = *delta.reasoning;
  }
  if (!delta.text.empty() || (delta.finish == finish_reason::none && !reasoning))
    d["content"] = delta.text;
  json choice = {{"index", delta.index},
                 {"delta", std::move(d)},
                 {"logprobs", logprobs && !delta.logprobs.empty() ? chat_logprobs(delta.logprobs, token_text) : json(nullptr)},
                 {"finish_reason", finish_json(delta.finish, delta.tools_called)}};
  if (delta.finish != finish_reason::none)
    choice["stop_reason"] = stop_reason(delta);
  j["choices"] = json::array({std::move(choice)});
  if (meta.include_usage)
    j["usage"] = nullptr;
  return dump(j);
}

std::string chat_tool_call_chunk(const response_meta& meta, int32_t index, int32_t call_index, const tool_call& call,
                                 bool header) {
  json j = envelope(meta, "chat.completion.chunk");
  json entry = {{"index", call_index}};
  if (header) {
    entry["id"] = call.id;
    entry["type"] = "function";
    entry["function"] = {{"name", call.name}, {"arguments", ""}};
  } else {
    entry["function"] = {{"arguments", call.arguments}};
  }
  j["choices"] = json::array({{{"index", index},
                               {"delta", {{"tool_calls", json::array({std::move(entry)})}}},
                               {"logprobs", nullptr},
                               {"finish_reason", nullptr}}});
  if (meta.include_usage)
    j["usage"] = nullptr;
  return dump(j);
}

std::string usage_chunk(const response_meta& meta, const char* object, const usage_totals& usage) {
  json j = envelope(meta, object);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string models_response(const std::vector<std::string>& names, int64_t created, int32_t max_model_len,
                             const std::string& root) {
  json data = json::array();
  for (const std::string& name : names)
    data.push_back({{"id", name},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", "actorserve"},
                    {"root", root},
                    {"parent", nullptr},
                    {"max_model_len", max_model_len}});
  return dump(json{{"object", "list"}, {"data", data}});
}

} // namespace actorserve::gateway
