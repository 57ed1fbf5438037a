#pragma once
// Parsed API requests -> engine requests: apply the chat template, tokenize, check the context
// length, and fill `generate_request` (one per prompt). Everything the client got wrong is an
// api_error here, before anything reaches the engine.

#include "actors/engine.hpp"
#include "gateway/openai_request.hpp"
#include "gateway/reasoning_parser.hpp"
#include "gateway/text_frontend.hpp"

#include <string>
#include <vector>

namespace actorserve::gateway {

struct prepared_request {
  std::vector<generate_request> engine_requests; // one per prompt
  std::vector<std::string> echo_text;            // completions with echo: each prompt's text
  bool prompt_opens_reasoning = false;           // chat: the rendered prompt ends inside <think>
};

prepared_request prepare_completion(const completion_request& request, const text_frontend& frontend,
                                    int32_t max_model_len, engine_clock::time_point arrival);
prepared_request prepare_chat(const chat_request& request, const text_frontend& frontend, int32_t max_model_len,
                              engine_clock::time_point arrival);

} // namespace actorserve::gateway
