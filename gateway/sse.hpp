#pragma once
// Server-sent events as OpenAI streams them: each event is one `data: <json>` line followed by
// a blank line, and the stream ends with `data: [DONE]`. Also the incremental parser the bench
// client reads streams with.

#include <functional>
#include <string>
#include <string_view>

namespace actorserve::gateway {

/// "data: " + payload + "\n\n". The payload must not contain a newline (compact JSON does not).
std::string sse_event(std::string_view payload);
/// "data: [DONE]\n\n".
const std::string& sse_done();

/// Splits a byte stream into events and hands each event's data (its `data:` lines joined with
/// "\n", one leading space removed) to `on_data`. Comments (": ...") and other fields are
/// skipped. Accepts "\n", "\r\n" and "\r" line ends, and events split anywhere across feeds.
class sse_parser {
public:
  explicit sse_parser(std::function<void(std::string_view data)> on_data) : on_data_(std::move(on_data)) {}
  void feed(std::string_view bytes);
  /// Bytes of an event not yet terminated by a blank line.
  size_t pending_bytes() const { return buffer_.size(); }

private:
  void line(std::string_view text);

  std::function<void(std::string_view)> on_data_;
  std::string buffer_;  // an unfinished line
  std::string data_;    // data of the current event
  bool has_data_ = false;
  bool last_was_cr_ = false;
};

} // namespace actorserve::gateway
