#include "gateway/openai_request.hpp"

#include "gateway/json_fields.hpp"
#include "gateway/json_parse.hpp"

#include <algorithm>
#include <limits>

namespace actorserve::gateway {
namespace {

using json = nlohmann::ordered_json;

constexpr int32_t max_int32 = std::numeric_limits<int32_t>::max();

void require_object(const json& body) {
  if (!body.is_object())
    throw invalid_request("The request body must be a JSON object, but got " + json_kind(body) + " instead.");
}

[[noreturn]] void missing(const std::string& param) {
  throw invalid_request("Missing required parameter: '" + param + "'.", param, "missing_required_parameter");
}

[[noreturn]] void unsupported(const std::string& param, const std::string& what) {
  throw invalid_request("Unsupported parameter: '" + param + "': " + what, param, "unsupported_parameter");
}

std::string model_of(const json_fields& f, const request_limits& limits) {
  auto model = f.string("model");
  if (!model) {
    if (limits.model_names.empty())
      missing("model");
    return limits.model_names.front();
  }
  if (!limits.model_names.empty() &&
      std::find(limits.model_names.begin(), limits.model_names.end(), *model) == limits.model_names.end())
    throw api_error(404, "The model `" + *model + "` does not exist.", "invalid_request_error", "model",
                    "model_not_found");
  return *model;
}

int32_t token_id(const json& v, const std::string& param, const request_limits& limits) {
  const int64_t max_id = limits.vocab_size > 0 ? limits.vocab_size - 1 : int64_t(max_int32);
  return int32_t(json_integer(v, param, 0, max_id));
}

// Parameters both APIs share. `max_tokens` is read by the callers (their names differ).
void parse_common(const json_fields& f, const request_limits& limits, generation_params& p) {
  p.model = model_of(f, limits);
  p.sampling = limits.defaults;
  p.sampling.logprobs = -1;
  if (auto v = f.integer("n", 1, limits.max_n)) p.n = int32_t(*v);
  if (auto v = f.boolean("stream")) p.stream = *v;
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object())
      f.wrong_type("stream_options", "an object");
    if (!p.stream)
      throw invalid_request("Invalid 'stream_options': only allowed when 'stream' is true.", "stream_options");
    json_fields sof(*so, "stream_options.");
    if (auto v = sof.boolean("include_usage")) p.include_usage = *v;
  }
  sampling_params& s = p.sampling;
  if (auto v = f.number("temperature", 0.0, 2.0)) s.temperature = float(*v);
  if (auto v = f.number("top_p", 0.0, 1.0, true)) s.top_p = float(*v);
  if (auto v = f.integer("top_k", -1, max_int32)) s.top_k = int32_t(*v);
  if (auto v = f.number("min_p", 0.0, 1.0)) s.min_p = float(*v);
  if (auto v = f.number("presence_penalty", -2.0, 2.0)) s.presence_penalty = float(*v);
  if (auto v = f.number("frequency_penalty", -2.0, 2.0)) s.frequency_penalty = float(*v);
  if (auto v = f.number("repetition_penalty", 0.0, 2.0, true)) s.repetition_penalty = float(*v);
  if (const json* seed = f.get("seed")) {
    if (seed->is_number_unsigned())
      s.seed = seed->get<uint64_t>();
    else
      s.seed = uint64_t(json_integer(*seed, "seed", std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max()));
    p.has_seed = true;
  }
  if (auto v = f.string_or_strings("stop", limits.max_stop_strings)) {
    for (size_t i = 0; i < v->size(); ++i)
      if ((*v)[i].empty())
        throw invalid_request("Invalid 'stop': stop strings must not be empty.", "stop");
    p.stop = std::move(*v);
  }
  if (const json* ids = f.get("stop_token_ids")) {
    if (!ids->is_array())
      f.wrong_type("stop_token_ids", "an array of integers");
    for (size_t i = 0; i < ids->size(); ++i)
      p.stop_token_ids.push_back(token_id((*ids)[i], "stop_token_ids[" + std::to_string(i) + "]", limits));
  }
  if (auto v = f.boolean("include_stop_str_in_output")) p.include_stop_str_in_output = *v;
  if (auto v = f.boolean("ignore_eos")) p.ignore_eos = *v;
  if (auto v = f.boolean("skip_special_tokens")) p.skip_special_tokens = *v;
  if (auto v = f.integer("min_tokens", 0, max_int32)) p.min_tokens = int32_t(*v);
  if (auto v = f.string("user")) p.user = std::move(*v);
  if (const json* best_of = f.get("best_of")) {
    if (json_integer(*best_of, "best_of", 1, limits.max_n) != p.n)
      unsupported("best_of", "only best_of equal to n is supported.");
  }
  if (const json* bias = f.get("logit_bias")) {
    if (!bias->is_object())
      f.wrong_type("logit_bias", "an object");
    if (!bias->empty())
      unsupported("logit_bias", "logit_bias is not supported by this server.");
  }
}

// max_tokens: `absent_default` when the field is absent; null means "the rest of the context".
void parse_max_tokens(const json_fields& f, const char* name, std::optional<int32_t> absent_default,
                      generation_params& p) {
  if (!f.present(name)) {
    p.max_tokens = absent_default;
    return;
  }
  if (auto v = f.integer(name, 1, max_int32))
    p.max_tokens = int32_t(*v);
  else
    p.max_tokens = std::nullopt;
}

void check_min_tokens(const generation_params& p) {
  if (p.max_tokens && p.min_tokens > *p.max_tokens)
    throw invalid_request("Invalid 'min_tokens': must be at most max_tokens (" + std::to_string(*p.max_tokens) +
                              "), but got " + std::to_string(p.min_tokens) + ".",
                          "min_tokens");
}

std::vector<int32_t> token_list(const json& v, const std::string& param, const request_limits& limits) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    ids.push_back(token_id(v[i], param + "[" + std::to_string(i) + "]", limits));
  if (ids.empty())
    throw invalid_request("Invalid '" + param + "': the prompt must not be empty.", param, "empty_array");
  return ids;
}

std::vector<prompt_input> parse_prompts(const json_fields& f, const request_limits& limits) {
  const json* v = f.get("prompt");
  if (!v)
    missing("prompt");
  const char* expected = "a string, an array of strings, an array of integers or an array of arrays of integers";
  std::vector<prompt_input> prompts;
  if (v->is_string()) {
    prompts.push_back({false, v->get<std::string>(), {}});
    return prompts;
  }
  if (!v->is_array())
    f.wrong_type("prompt", expected);
  if (v->empty())
    throw invalid_request("Invalid 'prompt': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.",
                          "prompt", "empty_array");
  const json& first = v->front();
  if (first.is_number()) { // one prompt as token ids
    prompts.push_back({true, {}, token_list(*v, "prompt", limits)});
    return prompts;
  }
  if (v->size() > limits.max_prompts)
    throw invalid_request("Invalid 'prompt': at most " + std::to_string(limits.max_prompts) +
                              " prompts per request, but got " + std::to_string(v->size()) + ".",
                          "prompt", "array_above_max_length");
  for (size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    const std::string param = "prompt[" + std::to_string(i) + "]";
    if (first.is_string() && item.is_string())
      prompts.push_back({false, item.get<std::string>(), {}});
    else if (first.is_array() && item.is_array())
      prompts.push_back({true, {}, token_list(item, param, limits)});
    else
      throw invalid_request("Invalid type for '" + param + "': expected " +
                                (first.is_string() ? "a string" : first.is_array() ? "an array of integers" : expected) +
                                ", but got " + json_kind(item) + " instead.",
                            param, "invalid_type");
  }
  return prompts;
}

// A message's content: a string, null, or an array of text parts (joined with no separator,
// as the template would see one string).
void parse_content(const json_fields& f, chat_message& m) {
  const json* content = f.get("content");
  if (!content) {
    m.has_content = false;
    return;
  }
  if (content->is_string()) {
    m.content = content->get<std::string>();
    return;
  }
  if (!content->is_array())
    f.wrong_type("content", "a string or an array of content parts");
  for (size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string param = f.param("content") + "[" + std::to_string(i) + "]";
    if (!part.is_object())
      throw invalid_request("Invalid type for '" + param + "': expected an object, but got " + json_kind(part) +
                                " instead.",
                            param, "invalid_type");
    json_fields pf(part, param + ".");
    auto type = pf.string("type");
    if (!type)
      missing(param + ".type");
    if (*type != "text")
      throw invalid_request("Invalid '" + param + ".type': content parts of type '" + *type +
                                "' are not supported; this server takes text only.",
                            param + ".type", "unsupported_content_type");
    auto text = pf.string("text");
    if (!text)
      missing(param + ".text");
    m.content += *text;
  }
}

// An assistant message's tool_calls as the chat template gets them. OpenAI sends each call's
// `arguments` as a JSON string; templates expect an object (Llama 3's prints it with tojson),
// so, as vLLM does, a string is parsed (keeping its key order) and an empty one becomes {}.
json template_tool_calls(const json& calls, const std::string& param) {
  json out = calls;
  for (size_t i = 0; i < out.size(); ++i) {
    json& call = out[i];
    const std::string where = param + "[" + std::to_string(i) + "]";
    if (!call.is_object())
      throw invalid_request("Invalid type for '" + where + "': expected an object, but got " + json_kind(call) +
                                " instead.",
                            where, "invalid_type");
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object())
      missing(where + ".function");
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string())
      missing(where + ".function.name");
    auto args = fn->find("arguments");
    if (args == fn->end() || args->is_null() || (args->is_string() && args->get_ref<const std::string&>().empty())) {
      (*fn)["arguments"] = json::object();
    } else if (args->is_string()) {
      try {
        *args = parse_ordered_json(args->get_ref<const std::string&>());
      } catch (const nlohmann::json::exception& e) {
        throw invalid_request("Invalid '" + where + ".function.arguments': not valid JSON (" + e.what() + ").",
                              where + ".function.arguments", "invalid_value");
      }
    } else if (!args->is_object()) {
      throw invalid_request("Invalid type for '" + where + ".function.arguments': expected a JSON string or an "
                                "object, but got " + json_kind(*args) + " instead.",
                            where + ".function.arguments", "invalid_type");
    }
  }
  return out;
}

// An assistant's reasoning sent back in the history. Recent vLLM reads `reasoning`, older
// versions and many clients use `reasoning_content` (our responses carry both, equal), so
// either is taken; both given with different texts is ambiguous. Other roles may not carry
// it, as they may not carry tool_calls: no template reads it there.
std::optional<std::string> parse_reasoning(const json_fields& f, const std::string& role) {
  auto reasoning_content = f.string("reasoning_content");
  auto reasoning = f.string("reasoning");
  const char* given = reasoning_content ? "reasoning_content" : "reasoning";
  if (!reasoning_content && !reasoning)
    return std::nullopt;
  if (role != "assistant")
    throw invalid_request(std::string("Invalid parameter: only messages with role 'assistant' may have '") + given +
                              "'.",
                          f.param(given));
  if (reasoning_content && reasoning && *reasoning_content != *reasoning)
    throw invalid_request("Invalid parameter: 'reasoning_content' and 'reasoning' differ; send one of them (they "
                          "are two names of the same text).",
                          f.param("reasoning"));
  return reasoning_content ? reasoning_content : reasoning;
}

std::vector<chat_message> parse_messages(const json_fields& f) {
  const json* v = f.get("messages");
  if (!v)
    missing("messages");
  if (!v->is_array())
    f.wrong_type("messages", "an array");
  if (v->empty())
    throw invalid_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.",
                          "messages", "empty_array");
  std::vector<chat_message> messages;
  messages.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    const std::string prefix = "messages[" + std::to_string(i) + "].";
    if (!item.is_object())
      throw invalid_request("Invalid type for 'messages[" + std::to_string(i) + "]': expected an object, but got " +
                                json_kind(item) + " instead.",
                            "messages[" + std::to_string(i) + "]", "invalid_type");
    json_fields mf(item, prefix);
    chat_message m;
    auto role = mf.string("role");
    if (!role)
      missing(prefix + "role");
    static const char* roles[] = {"system", "developer", "user", "assistant", "tool"};
    if (std::none_of(std::begin(roles), std::end(roles), [&](const char* r) { return *role == r; }))
      throw invalid_request("Invalid value: '" + *role + "'. Supported values are: 'system', 'developer', 'user', "
                                "'assistant', and 'tool'.",
                            prefix + "role", "invalid_value");
    m.role = *role;
    parse_content(mf, m);
    if (auto name = mf.string("name")) m.name = *name;
    if (auto id = mf.string("tool_call_id")) m.tool_call_id = *id;
    if (const json* calls = mf.get("tool_calls")) {
      if (m.role != "assistant")
        throw invalid_request("Invalid parameter: only messages with role 'assistant' may have 'tool_calls'.",
                              prefix + "tool_calls");
      if (!calls->is_array())
        mf.wrong_type("tool_calls", "an array");
      m.tool_calls = template_tool_calls(*calls, prefix + "tool_calls");
    }
    m.reasoning = parse_reasoning(mf, m.role);
    if (!m.has_content && m.tool_calls.is_null())
      missing(prefix + "content");
    messages.push_back(std::move(m));
  }
  return messages;
}

// tools and tool_choice, with vLLM's rules: tool_choice defaults to "auto" when tools are
// given; "auto" needs --enable-auto-tool-choice and --tool-call-parser; "required" and a named
// function need --tool-call-parser (vLLM forces them with guided decoding, which this server
// does not have: the model is asked to call the tool, and its calls are parsed, not forced).
void parse_tools(const json_fields& f, const request_limits& limits, chat_request& r) {
  if (const json* tools = f.get("tools")) {
    if (!tools->is_array())
      f.wrong_type("tools", "an array");
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& tool = (*tools)[i];
      const std::string prefix = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object())
        throw invalid_request("Invalid type for '" + prefix + "': expected an object, but got " + json_kind(tool) +
                                  " instead.",
                              prefix, "invalid_type");
      json_fields tf(tool, prefix + ".");
      auto type = tf.string("type");
      if (type != "function")
        throw invalid_request("Invalid '" + prefix + ".type': only tools of type 'function' are supported.",
                              prefix + ".type", "invalid_value");
      const json* fn = tf.get("function");
      if (!fn)
        missing(prefix + ".function");
      if (!fn->is_object())
        tf.wrong_type("function", "an object");
      if (!json_fields(*fn, prefix + ".function.").string("name"))
        missing(prefix + ".function.name");
    }
    r.tools = *tools;
  }
  if (const json* choice = f.get("tool_choice")) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c != "none" && c != "auto" && c != "required")
        throw invalid_request("Invalid value: '" + c + "'. Supported values are: 'none', 'auto', and 'required'.",
                              "tool_choice", "invalid_value");
      if (c == "required" && (!r.tools.is_array() || r.tools.empty()))
        throw invalid_request("Invalid 'tool_choice': 'required' needs 'tools'.", "tool_choice");
    } else if (choice->is_object()) {
      const json* fn = choice->contains("function") ? &(*choice)["function"] : nullptr;
      if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
        missing("tool_choice.function.name");
      const std::string name = (*fn)["name"].get<std::string>();
      const bool known = r.tools.is_array() && std::any_of(r.tools.begin(), r.tools.end(), [&](const json& t) {
                           return t["function"]["name"] == name;
                         });
      if (!known)
        throw invalid_request("Invalid 'tool_choice': no tool named '" + name + "' in 'tools'.", "tool_choice");
    } else {
      f.wrong_type("tool_choice", "a string or an object");
    }
    r.tool_choice = *choice;
  }
  const bool has_tools = r.tools.is_array() && !r.tools.empty();
  const std::string mode = r.tool_choice.is_null()    ? (has_tools ? "auto" : "none")
                           : r.tool_choice.is_string() ? r.tool_choice.get<std::string>()
                                                       : "function";
  if (mode == "none" || !has_tools || !limits.check_tool_choice)
    return;
  if (mode == "auto" && !(limits.enable_auto_tool_choice && limits.tool_parser))
    throw invalid_request(std::string(r.tool_choice.is_null() ? "'tools' were given, so 'tool_choice' defaults to "
                                                                "\"auto\", which"
                                                              : "\"auto\" tool choice") +
                              " requires the server to run with --enable-auto-tool-choice and --tool-call-parser. "
                              "Send \"tool_choice\": \"none\" to show the tools to the model without parsing tool "
                              "calls.",
                          "tool_choice", "tool_choice_not_enabled");
  if (!limits.tool_parser)
    throw invalid_request((mode == "required" ? std::string("tool_choice \"required\"") : "A named tool_choice") +
                              " requires the server to run with --tool-call-parser (tool calls are parsed from the "
                              "model's output; this server has no guided decoding to force them).",
                          "tool_choice", "tool_choice_not_enabled");
  r.tool_parser = limits.tool_parser;
}

} // namespace

json parse_json_body(std::string_view body) {
  try {
    return parse_ordered_json(body);
  } catch (const json::parse_error& e) {
    const std::string what = e.what();
    if (what.find("UTF-8") != std::string::npos)
      throw invalid_request("The request body is not valid UTF-8 (byte " + std::to_string(e.byte) +
                                "); JSON text must be UTF-8.",
                            {}, "invalid_utf8");
    throw invalid_request("We could not parse the JSON body of your request: " + what +
                              " (HINT: the body must be a JSON object, sent with Content-Type: application/json).",
                          {}, "invalid_json");
  }
}

std::string resolve_model(const json& body, const request_limits& limits) {
  require_object(body);
  return model_of(json_fields(body), limits);
}

completion_request parse_completion_request(const json& body, const request_limits& limits) {
  require_object(body);
  json_fields f(body);
  completion_request r;
  r.prompts = parse_prompts(f, limits);
  parse_common(f, limits, r.params);
  parse_max_tokens(f, "max_tokens", 16, r.params);
  check_min_tokens(r.params);
  if (auto v = f.integer("logprobs", 0, limits.max_logprobs)) r.params.sampling.logprobs = int32_t(*v);
  if (auto v = f.boolean("echo")) r.echo = *v;
  if (f.has("suffix"))
    unsupported("suffix", "suffix (insertion) is not supported by this server.");
  return r;
}

chat_request parse_chat_request(const json& body, const request_limits& limits) {
  require_object(body);
  json_fields f(body);
  chat_request r;
  r.messages = parse_messages(f);
  parse_common(f, limits, r.params);
  // max_completion_tokens replaces the deprecated max_tokens; it wins when both are sent.
  parse_max_tokens(f, f.present("max_completion_tokens") ? "max_completion_tokens" : "max_tokens", std::nullopt,
                   r.params);
  check_min_tokens(r.params);
  const bool logprobs = f.boolean("logprobs").value_or(false);
  auto top = f.integer("top_logprobs", 0, limits.max_logprobs);
  if (top && !logprobs)
    throw invalid_request("Invalid 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is given.",
                          "top_logprobs");
  if (logprobs)
    r.params.sampling.logprobs = int32_t(top.value_or(0));
  parse_tools(f, limits, r);
  if (const json* fmt = f.get("response_format")) {
    if (!fmt->is_object())
      f.wrong_type("response_format", "an object");
    auto type = json_fields(*fmt, "response_format.").string("type");
    if (type && *type != "text")
      unsupported("response_format", "only {\"type\": \"text\"} is supported (no guided decoding).");
  }
  if (auto v = f.boolean("add_generation_prompt")) r.add_generation_prompt = *v;
  if (auto v = f.boolean("continue_final_message")) r.continue_final_message = *v;
  if (r.add_generation_prompt && r.continue_final_message && f.has("add_generation_prompt"))
    throw invalid_request("'continue_final_message' and 'add_generation_prompt' cannot both be true.",
                          "continue_final_message");
  if (r.continue_final_message) {
    r.add_generation_prompt = false;
    if (r.messages.back().role != "assistant")
      throw invalid_request("'continue_final_message' needs the last message to be the assistant's.",
                            "continue_final_message");
  }
  if (const json* kwargs = f.get("chat_template_kwargs")) {
    if (!kwargs->is_object())
      f.wrong_type("chat_template_kwargs", "an object");
    r.chat_template_kwargs = *kwargs;
  }
  return r;
}

int32_t check_context(size_t num_prompt_tokens, std::optional<int32_t> max_tokens, int32_t max_model_len,
                      const char* prompt_param) {
  const int64_t prompt = int64_t(num_prompt_tokens);
  const std::string where = std::string(prompt_param) == "messages" ? "messages" : "prompt";
  if (prompt >= max_model_len)
    throw invalid_request("This model's maximum context length is " + std::to_string(max_model_len) +
                              " tokens. However, your " + where + " has " + std::to_string(prompt) +
                              " tokens, which leaves no room for the completion. Please reduce the length of the " +
                              where + ".",
                          prompt_param, "context_length_exceeded");
  if (!max_tokens)
    return int32_t(max_model_len - prompt);
  if (prompt + *max_tokens > max_model_len)
    throw invalid_request("This model's maximum context length is " + std::to_string(max_model_len) +
                              " tokens. However, you requested " + std::to_string(prompt + *max_tokens) + " tokens (" +
                              std::to_string(prompt) + " in the " + where + ", " + std::to_string(*max_tokens) +
                              " in the completion). Please reduce the length of the " + where + " or completion.",
                          "max_tokens", "context_length_exceeded");
  return *max_tokens;
}

} // namespace actorserve::gateway
