#include "gateway/request_builder.hpp"

#include <algorithm>

namespace actorserve::gateway {
namespace {

generate_request base_request(const generation_params& p, std::vector<int32_t> prompt, int32_t max_model_len,
                              const char* prompt_param, engine_clock::time_point arrival) {
  if (prompt.empty())
    throw invalid_request("The prompt is empty after tokenization; send at least one token.", prompt_param,
                          "empty_prompt");
  generate_request r;
  r.max_tokens = check_context(prompt.size(), p.max_tokens, max_model_len, prompt_param);
  r.prompt_token_ids = std::move(prompt);
  r.sampling = p.sampling;
  r.has_seed = p.has_seed;
  r.min_tokens = std::min(p.min_tokens, r.max_tokens);
  r.stop_token_ids = p.stop_token_ids;
  r.stop = p.stop;
  r.include_stop_str_in_output = p.include_stop_str_in_output;
  r.ignore_eos = p.ignore_eos;
  r.skip_special_tokens = p.skip_special_tokens;
  r.n = p.n;
  r.arrival_time = arrival;
  return r;
}

} // namespace

prepared_request prepare_completion(const completion_request& request, const text_frontend& frontend,
                                    int32_t max_model_len, engine_clock::time_point arrival) {
  prepared_request out;
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    const prompt_input& prompt = request.prompts[i];
    std::vector<int32_t> ids = prompt.is_tokens ? prompt.token_ids : frontend.encode(prompt.text, true);
    if (request.echo)
      out.echo_text.push_back(prompt.is_tokens ? frontend.decode(prompt.token_ids, false) : prompt.text);
    out.engine_requests.push_back(base_request(request.params, std::move(ids), max_model_len, "prompt", arrival));
  }
  return out;
}

prepared_request prepare_chat(const chat_request& request, const text_frontend& frontend, int32_t max_model_len,
                              engine_clock::time_point arrival) {
  prepared_request out;
  const std::string text = frontend.apply_chat_template(request);
  out.prompt_opens_reasoning = prompt_opens_reasoning(text);
  out.engine_requests.push_back(base_request(request.params, frontend.encode(text, frontend.chat_adds_special_tokens()),
                                             max_model_len, "messages", arrival));
  // A parser whose marker is a special token must see it in the text.
  if (request.tool_parser && tool_parser_needs_special_tokens(*request.tool_parser))
    out.engine_requests.back().skip_special_tokens = false;
  return out;
}

} // namespace actorserve::gateway
