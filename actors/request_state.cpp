#include "actors/request_state.hpp"

#include <algorithm>

namespace actorserve {

namespace {
// Tokens of the prompt kept as detokenization context: enough for tokenizers whose pieces
// depend on their left neighbour (leading spaces, byte fallback).
constexpr int32_t prompt_context_tokens = 5;

bool ends_with_replacement_char(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
} // namespace

request_state::request_state(const generate_request& request, std::shared_ptr<const detokenizer> detok)
    : detok_(request.detokenize ? std::move(detok) : nullptr), stop_(request.stop),
      include_stop_str_(request.include_stop_str_in_output), skip_special_(request.skip_special_tokens),
      min_tokens_(request.min_tokens), logprobs_(request.sampling.logprobs),
      prompt_tokens_(int32_t(request.prompt_token_ids.size())) {
  stop_.erase(std::remove(stop_.begin(), stop_.end(), std::string{}), stop_.end());
  for (const auto& s : stop_)
    max_stop_len_ = std::max(max_stop_len_, s.size());
  choices_.resize(std::max(1, request.n));
  const auto& prompt = request.prompt_token_ids;
  int32_t tail = std::min<int32_t>(prompt_context_tokens, int32_t(prompt.size()));
  for (auto& c : choices_) {
    c.window_ids.assign(prompt.end() - tail, prompt.end());
    c.prefix_offset = 0;
    c.read_offset = tail;
    if (detok_)
      c.stream = detok_->stream(prompt, skip_special_);
  }
  // A resumed request (n == 1): replay the delivered tokens through the detokenizer so the text,
  // the stop-string window and the held-back tail are what the interrupted run had; only the
  // text that run still held back for a partial stop string is emitted again.
  if (!request.resume_output_token_ids.empty()) {
    choice& c = choices_[0];
    for (int32_t t : request.resume_output_token_ids) {
      c.token_ids.push_back(t);
      c.text += next_text(c, t, false, false);
    }
    c.emitted = c.text.size() - std::min(c.text.size(), held_back(c.text));
  }
}

std::string request_state::next_text(choice& c, int32_t token, bool flush, bool drop) {
  if (!detok_)
    return {};
  if (c.stream) {
    std::string out = drop ? std::string{} : c.stream->add(token);
    if (flush)
      out += c.stream->finish();
    return out;
  }
  if (!drop)
    c.window_ids.push_back(token);
  return decode_window(c, flush);
}

std::string request_state::decode_window(choice& c, bool flush) {
  if (!detok_ || c.read_offset >= int32_t(c.window_ids.size()))
    return {};
  std::span<const int32_t> ids(c.window_ids);
  std::string prefix_text = detok_->decode(ids.subspan(c.prefix_offset, c.read_offset - c.prefix_offset), skip_special_);
  std::string full_text = detok_->decode(ids.subspan(c.prefix_offset), skip_special_);
  if (full_text.size() <= prefix_text.size() && !flush)
    return {}; // e.g. a special token that is skipped: wait
  if (ends_with_replacement_char(full_text) && !flush)
    return {}; // an incomplete UTF-8 character: the next token completes it
  std::string out = full_text.size() > prefix_text.size() ? full_text.substr(prefix_text.size()) : std::string{};
  c.prefix_offset = c.read_offset;
  c.read_offset = int32_t(c.window_ids.size());
  // Keep the window short: drop ids before prefix_offset.
  if (c.prefix_offset > 64) {
    c.window_ids.erase(c.window_ids.begin(), c.window_ids.begin() + c.prefix_offset);
    c.read_offset -= c.prefix_offset;
    c.prefix_offset = 0;
  }
  return out;
}

size_t request_state::held_back(const std::string& text) const {
  size_t hold = 0;
  for (const auto& s : stop_) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

void request_state::emit(choice& c, choice_delta& d) {
  size_t upto = c.text.size();
  if (c.finish == finish_reason::none)
    upto -= std::min(upto, held_back(c.text));
  if (upto > c.emitted) {
    d.text.append(c.text, c.emitted, upto - c.emitted);
    c.emitted = upto;
  }
}

choice_delta request_state::add_tokens(int32_t index, const std::vector<sampled_wire>& tokens, finish_reason finish,
                                       int32_t stop_token, bool& stopped_by_string) {
  stopped_by_string = false;
  choice& c = choices_.at(index);
  choice_delta d;
  d.index = index;
  for (size_t i = 0; i < tokens.size() && c.finish == finish_reason::none; ++i) {
    const sampled_wire& t = tokens[i];
    bool last = i + 1 == tokens.size();
    c.token_ids.push_back(t.token);
    d.token_ids.push_back(t.token);
    if (logprobs_ >= 0) {
      token_logprob lp;
      lp.token = t.token;
      lp.logprob = bits_float(t.logprob_bits);
      for (size_t k = 0; k < t.top_tokens.size() && k < t.top_logprob_bits.size(); ++k)
        lp.top.emplace_back(t.top_tokens[k], bits_float(t.top_logprob_bits[k]));
      d.logprobs.push_back(std::move(lp));
    }
    bool scheduler_stops = last && finish != finish_reason::none;
    size_t old_len = c.text.size();
    // A stop token's own text is not part of the output.
    bool drop = scheduler_stops && finish == finish_reason::stop && stop_token >= 0 && !include_stop_str_;
    c.text += next_text(c, t.token, scheduler_stops, drop);
    if (!stop_.empty() && int32_t(c.token_ids.size()) >= min_tokens_ && c.text.size() > old_len) {
      size_t from = old_len >= max_stop_len_ ? old_len - max_stop_len_ + 1 : 0;
      size_t best = std::string::npos;
      const std::string* matched = nullptr;
      for (const auto& s : stop_) {
        size_t pos = c.text.find(s, from);
        if (pos != std::string::npos && pos < best) {
          best = pos;
          matched = &s;
        }
      }
      if (matched) {
        c.text.resize(include_stop_str_ ? best + matched->size() : best);
        c.finish = finish_reason::stop;
        d.stop_str = *matched;
        stopped_by_string = true;
        break;
      }
    }
    if (scheduler_stops) {
      c.finish = finish;
      if (finish == finish_reason::stop)
        d.stop_token = stop_token;
    }
  }
  if (c.finish == finish_reason::none && finish != finish_reason::none)
    c.finish = finish; // no tokens came with the decision (an abort)
  d.finish = c.finish;
  emit(c, d);
  return d;
}

std::vector<choice_delta> request_state::finish_all(finish_reason reason) {
  std::vector<choice_delta> out;
  for (int32_t i = 0; i < n(); ++i) {
    choice& c = choices_[i];
    if (c.finish != finish_reason::none)
      continue;
    c.finish = reason;
    choice_delta d;
    d.index = i;
    d.finish = reason;
    emit(c, d);
    out.push_back(std::move(d));
  }
  return out;
}

bool request_state::all_finished() const {
  return std::all_of(choices_.begin(), choices_.end(), [](const choice& c) { return c.finish != finish_reason::none; });
}

usage_counts request_state::usage() const {
  usage_counts u;
  u.prompt_tokens = prompt_tokens_;
  for (const auto& c : choices_)
    u.completion_tokens += int32_t(c.token_ids.size());
  return u;
}

} // namespace actorserve
