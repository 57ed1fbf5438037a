#include "gateway/sse.hpp"

namespace actorserve::gateway {

std::string sse_event(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
  return out;
}

const std::string& sse_done() {
  static const std::string done = "data: [DONE]\n\n";
  return done;
}

void sse_parser::feed(std::string_view bytes) {
  for (char c : bytes) {
    if (c == '\n' && last_was_cr_) { // the \n of a \r\n already ended the line
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      line(buffer_);
      buffer_.clear();
    } else {
      buffer_ += c;
    }
  }
}

void sse_parser::line(std::string_view text) {
  if (text.empty()) { // a blank line dispatches the event
    if (has_data_)
      on_data_(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (text.front() == ':')
    return;
  const size_t colon = text.find(':');
  const std::string_view field = text.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field != "data")
    return;
  if (has_data_)
    data_ += '\n';
  data_ += value;
  has_data_ = true;
}

} // namespace actorserve::gateway
