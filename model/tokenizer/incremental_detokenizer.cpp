#include "model/tokenizer/incremental_detokenizer.hpp"

#include "model/tokenizer/decoders.hpp"
#include "model/tokenizer/tokenizer_state.hpp"

namespace actorserve {

namespace {

constexpr std::string_view replacement_char = "\xef\xbf\xbd";
// Prompt ids kept as context: enough for any decoder's look-back (one token) with margin.
constexpr size_t prompt_context = 6;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

incremental_detokenizer::incremental_detokenizer(tokenizer tok, bool skip_special_tokens,
                                                 std::span<const uint32_t> prompt_ids)
    : tok_(std::move(tok)), skip_special_(skip_special_tokens) {
  const auto& dec = tok_.state().dec;
  hold_byte_tokens_ = dec && dec->groups_byte_tokens();
  lag_one_token_ = dec && dec->edits_end();
  size_t from = prompt_ids.size() > prompt_context ? prompt_ids.size() - prompt_context : 0;
  for (size_t i = from; i < prompt_ids.size(); ++i)
    if (!(skip_special_ && tok_.is_special(prompt_ids[i])) && tok_.state().token_string(prompt_ids[i]))
      ids_.push_back(prompt_ids[i]);
  read_offset_ = ids_.size();
}

std::string incremental_detokenizer::decode_window(size_t begin, size_t end) const {
  return tok_.decode(std::span<const uint32_t>(ids_.data() + begin, end - begin), false);
}

std::string incremental_detokenizer::add(uint32_t id) {
  const auto& state = tok_.state();
  const std::string* token = state.token_string(id);
  if (!token || (skip_special_ && tok_.is_special(id)))
    return {}; // decode drops these ids too
  ids_.push_back(id);
  if (hold_byte_tokens_ && tokenization::byte_fallback_value(*token) >= 0)
    return {};
  size_t end = ids_.size() - (lag_one_token_ ? 1 : 0);
  if (end <= read_offset_)
    return {};
  std::string prefix_text = decode_window(prefix_offset_, read_offset_);
  std::string new_text = decode_window(prefix_offset_, end);
  if (new_text.size() <= prefix_text.size() || ends_with(new_text, replacement_char) ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0)
    return {};
  std::string released = new_text.substr(prefix_text.size());
  // The next window starts at the ids just released, unless they decode to nothing on their own
  // (e.g. spaces that Strip removes at the start of a text): a window starting there could strip
  // text the full decode keeps, so the window keeps its current start.
  if (!decode_window(read_offset_, end).empty())
    prefix_offset_ = read_offset_;
  read_offset_ = end;
  // Drop ids that no window will read again, now and then, so long streams stay small.
  if (prefix_offset_ > 4096) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return released;
}

std::string incremental_detokenizer::finish() {
  if (ids_.size() <= read_offset_)
    return {};
  std::string prefix_text = decode_window(prefix_offset_, read_offset_);
  std::string new_text = decode_window(prefix_offset_, ids_.size());
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.compare(0, prefix_text.size(), prefix_text) != 0 || new_text.size() < prefix_text.size())
    return {};
  return new_text.substr(prefix_text.size());
}

} // namespace actorserve
