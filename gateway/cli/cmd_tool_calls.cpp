// `actorserve tool-calls [--parser NAME] [--reasoning-parser NAME] [--stream] [--piece-bytes N]`:
// reads a model's output text on stdin and prints what /v1/chat/completions sends for it when
// the server runs with --tool-call-parser NAME (and/or --reasoning-parser NAME): the
// chat.completion body, or with --stream the SSE bytes, the text arriving in pieces of N bytes
// as tokens would. For checking what a model's tool-call or reasoning output becomes (and, in
// tests/e2e, that the OpenAI SDK reads it) without a model that writes it.

#include "gateway/cli/command.hpp"
#include "gateway/response_assembler.hpp"

#include <iostream>
#include <iterator>
#include <stdexcept>

namespace actorserve::cli {
namespace {

struct tool_calls_args {
  std::string parser;
  std::string reasoning_parser;
  bool stream = false;
  size_t piece_bytes = 4;
};

int run_tool_calls(const tool_calls_args& a) {
  using namespace actorserve::gateway;
  if (a.parser.empty() && a.reasoning_parser.empty())
    throw std::runtime_error("give --parser, --reasoning-parser or both");
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  assembler_options o;
  o.kind = api_kind::chat;
  o.meta = {make_response_id("chatcmpl"), unix_now(), "model", false};
  o.stream = a.stream;
  o.token_text = [](int32_t) { return std::string(); };
  if (!a.parser.empty())
    o.tool_parser = tool_parser_from_name(a.parser);
  if (!a.reasoning_parser.empty())
    o.reasoning_parser = reasoning_parser_from_name(a.reasoning_parser);
  response_assembler assembler(o);
  std::string out = assembler.start();
  int32_t pieces = 0;
  for (size_t at = 0; at < text.size() || pieces == 0; at += a.piece_bytes) {
    request_output event;
    choice_delta d;
    d.text = text.substr(std::min(at, text.size()), a.piece_bytes);
    d.token_ids = {0};
    event.usage = {0, ++pieces};
    if (at + a.piece_bytes >= text.size()) {
      d.finish = finish_reason::stop;
      event.finished = true;
    }
    event.choices.push_back(std::move(d));
    out += assembler.on_event(0, event);
  }
  std::cout << out << assembler.finish();
  std::cout.flush();
  return 0;
}

command_registrar tool_calls_command{
    "tool-calls",
    "show what a model output (stdin) becomes in a chat response with a --tool-call-parser and/or --reasoning-parser",
    [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<tool_calls_args>();
      app.add_option("--parser", a->parser, "tool call parser: hermes, llama3_json or mistral")
          ->check(CLI::IsMember({"hermes", "llama3_json", "mistral"}));
      app.add_option("--reasoning-parser", a->reasoning_parser, "deepseek_r1 or qwen3")
          ->check(CLI::IsMember({"deepseek_r1", "qwen3"}));
      app.add_flag("--stream", a->stream, "print the server-sent events instead of the JSON body");
      app.add_option("--piece-bytes", a->piece_bytes, "bytes of text per streamed event")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
      return [a] { return run_tool_calls(*a); };
    }};

} // namespace
} // namespace actorserve::cli
