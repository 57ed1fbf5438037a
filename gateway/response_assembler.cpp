#include "gateway/response_assembler.hpp"

#include "gateway/sse.hpp"

namespace actorserve::gateway {

api_error engine_failure(engine_errc error, const std::string& message) {
  switch (error) {
  case engine_errc::invalid_request: return invalid_request(message);
  case engine_errc::overloaded: return api_error(429, message, "rate_limit_error", {}, "too_many_waiting_requests");
  case engine_errc::shutting_down: return api_error(503, message, "server_error", {}, "shutting_down");
  case engine_errc::deadline_exceeded: return api_error(504, message, "server_error", {}, "deadline_exceeded");
  case engine_errc::cancelled: return api_error(499, message, "server_error", {}, "cancelled");
  case engine_errc::executor_failed:
  case engine_errc::none: break;
  }
  return api_error(500, message.empty() ? "The engine failed while running this request." : message, "server_error",
                   {}, "engine_error");
}

response_assembler::response_assembler(assembler_options options)
    : options_(std::move(options)), choices_(options_.num_prompts * size_t(options_.n)),
      usage_(options_.num_prompts), cached_(options_.num_prompts, 0), finished_(options_.num_prompts, false) {
  if (options_.kind != api_kind::chat)
    options_.reasoning_parser.reset(); // completions return the text as generated
  options_.meta.reasoning_fields = options_.reasoning_parser.has_value();
  for (size_t i = 0; i < choices_.size(); ++i) {
    choices_[i].output.index = int32_t(i);
    const size_t prompt = i / size_t(options_.n);
    if (prompt < options_.echo_text.size())
      choices_[i].text_offset = options_.echo_text[prompt].size();
    if (options_.tool_parser && options_.stream && options_.kind == api_kind::chat)
      choices_[i].tools.emplace(*options_.tool_parser);
    if (options_.reasoning_parser && options_.stream)
      choices_[i].reasoning.emplace(*options_.reasoning_parser, options_.prompt_opens_reasoning);
  }
}

std::string response_assembler::start() {
  std::string out;
  if (options_.stream && options_.kind == api_kind::chat)
    for (size_t i = 0; i < choices_.size(); ++i)
      out += sse_event(chat_role_chunk(options_.meta, int32_t(i)));
  return out;
}

std::string response_assembler::stream_delta(size_t global, const choice_delta& d) {
  choice_state& c = choices_[global];
  choice_output delta;
  delta.index = int32_t(global);
  delta.text = d.text;
  if (options_.logprobs)
    delta.logprobs = d.logprobs;
  std::string out;
  if (options_.kind == api_kind::completion) {
    const size_t prompt = global / size_t(options_.n);
    if (!c.echoed && prompt < options_.echo_text.size()) {
      delta.text = options_.echo_text[prompt] + delta.text;
      c.echoed = true;
    }
    const size_t offset = c.text_offset;
    c.text_offset += d.text.size();
    const bool has_news = !delta.text.empty() || !delta.logprobs.empty();
    if (d.finish != finish_reason::none) {
      // The last text and the finish travel in one chunk, as OpenAI's completions stream does.
      delta.finish = d.finish;
      delta.stop_str = d.stop_str;
      delta.stop_token = d.stop_token;
      out += sse_event(completion_chunk(options_.meta, delta, options_.logprobs, options_.token_text, offset));
    } else if (has_news) {
      out += sse_event(completion_chunk(options_.meta, delta, options_.logprobs, options_.token_text, offset));
    }
    return out;
  }
  if (c.reasoning) { // the reasoning goes out on its own; only the content after it reaches the tool parser
    reasoning_step step = c.reasoning->add(delta.text);
    if (d.finish != finish_reason::none) {
      reasoning_step rest = c.reasoning->finish();
      step.reasoning += rest.reasoning;
      step.content += rest.content;
    }
    if (!step.reasoning.empty())
      delta.reasoning = std::move(step.reasoning);
    delta.text = std::move(step.content);
  }
  tool_parse_step tools;
  if (c.tools) { // the parser decides which text is content and which makes tool calls
    tools = c.tools->add(delta.text);
    if (d.finish != finish_reason::none) {
      tool_parse_step rest = c.tools->finish();
      tools.content += rest.content;
      for (auto& call : rest.calls)
        tools.calls.push_back(std::move(call));
    }
    delta.text = std::move(tools.content);
  }
  if (!delta.text.empty() || delta.reasoning || !delta.logprobs.empty())
    out += sse_event(chat_chunk(options_.meta, delta, options_.logprobs, options_.token_text));
  if (!tools.calls.empty()) {
    int32_t call_index = c.tools->num_calls() - int32_t(tools.calls.size());
    for (const tool_call& call : tools.calls) {
      out += sse_event(chat_tool_call_chunk(options_.meta, int32_t(global), call_index, call, true));
      out += sse_event(chat_tool_call_chunk(options_.meta, int32_t(global), call_index, call, false));
      ++call_index;
    }
  }
  if (d.finish != finish_reason::none) {
    // Chat ends each choice with an empty delta carrying finish_reason.
    choice_output fin;
    fin.index = int32_t(global);
    fin.finish = d.finish;
    fin.stop_str = d.stop_str;
    fin.stop_token = d.stop_token;
    fin.tools_called = c.tools && c.tools->num_calls() > 0;
    out += sse_event(chat_chunk(options_.meta, fin, false, options_.token_text));
  }
  return out;
}

std::string response_assembler::on_event(size_t prompt, const request_output& event) {
  std::string out;
  if (prompt >= finished_.size() || finished_[prompt])
    return out;
  usage_[prompt] = event.usage;
  for (const choice_delta& d : event.choices) {
    if (d.index < 0 || d.index >= options_.n)
      continue;
    const size_t global = prompt * size_t(options_.n) + size_t(d.index);
    choice_state& c = choices_[global];
    if (options_.stream) {
      out += stream_delta(global, d);
    } else {
      c.output.text += d.text;
      if (options_.logprobs)
        c.output.logprobs.insert(c.output.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
    }
    if (d.finish != finish_reason::none) {
      c.output.finish = d.finish;
      c.output.stop_str = d.stop_str;
      c.output.stop_token = d.stop_token;
    }
  }
  if (event.finished) {
    finished_[prompt] = true;
    ++num_finished_;
    cached_[prompt] = event.metrics.num_cached_prompt_tokens;
    if (event.error != engine_errc::none && !failure_) {
      failure_ = engine_failure(event.error, event.error_message);
      if (options_.stream) // OpenAI reports a failure inside a stream as an error event
        out += sse_event(error_body(*failure_));
    }
  }
  return out;
}

usage_totals response_assembler::usage() const {
  usage_totals u;
  for (size_t p = 0; p < usage_.size(); ++p) {
    u.prompt_tokens += usage_[p].prompt_tokens;
    u.completion_tokens += usage_[p].completion_tokens;
    u.cached_tokens += cached_[p];
  }
  return u;
}

std::string response_assembler::summary_reason() const {
  if (failure_)
    return "error";
  std::string reason;
  for (const choice_state& c : choices_) {
    if (c.output.finish == finish_reason::abort || c.output.finish == finish_reason::none)
      return "abort";
    if (c.output.finish == finish_reason::length || reason.empty())
      reason = finish_reason_text(c.output.finish);
  }
  return reason;
}

std::string response_assembler::finish() {
  if (options_.stream) {
    std::string out;
    if (options_.meta.include_usage && !failure_)
      out += sse_event(usage_chunk(options_.meta,
                                   options_.kind == api_kind::chat ? "chat.completion.chunk" : "text_completion",
                                   usage()));
    out += sse_done();
    return out;
  }
  if (failure_)
    return error_body(*failure_);
  std::vector<choice_output> outputs;
  outputs.reserve(choices_.size());
  std::vector<size_t> offsets;
  for (size_t i = 0; i < choices_.size(); ++i) {
    choice_output c = choices_[i].output;
    const size_t prompt = i / size_t(options_.n);
    if (prompt < options_.echo_text.size()) {
      c.text = options_.echo_text[prompt] + c.text;
      offsets.push_back(options_.echo_text[prompt].size());
    } else {
      offsets.push_back(0);
    }
    if (options_.reasoning_parser) {
      reasoning_result split = split_reasoning(*options_.reasoning_parser, options_.prompt_opens_reasoning, c.text);
      c.reasoning = std::move(split.reasoning);
      c.text = std::move(split.content);
    }
    if (options_.tool_parser && options_.kind == api_kind::chat) {
      tool_parse_result parsed = parse_tool_calls(*options_.tool_parser, c.text);
      c.text = std::move(parsed.content);
      c.tool_calls = std::move(parsed.calls);
      c.tools_called = !c.tool_calls.empty();
    }
    outputs.push_back(std::move(c));
  }
  if (options_.kind == api_kind::chat)
    return chat_response(options_.meta, outputs, usage(), options_.logprobs, options_.token_text);
  return completion_response(options_.meta, outputs, usage(), options_.logprobs, options_.token_text, offsets);
}

} // namespace actorserve::gateway
