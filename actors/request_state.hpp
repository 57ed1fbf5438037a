#pragma once
// The state of one request as its request actor sees it: per choice, the output token ids,
// incremental detokenization, stop strings and the finish reason. No CAF.
//
// Detokenization is incremental (a window of a few tokens is decoded again and only the text
// past the previous window is new; text ending in an incomplete UTF-8 character, U+FFFD, waits
// for the next token). Stop strings are matched on the text across token boundaries; text that
// could still become the start of a stop string is held back from the stream until it cannot.

#include "actors/engine.hpp"
#include "actors/protocol.hpp"

#include <memory>
#include <string>
#include <vector>

namespace actorserve {

class request_state {
public:
  request_state(const generate_request& request, std::shared_ptr<const detokenizer> detok);

  /// Feeds new tokens of one choice (from the scheduler), with the scheduler's finish decision
  /// (length, or stop by token id) applying after the last of them. Returns what to stream;
  /// tokens after a stop string are dropped. `stopped_by_string` tells whether this call
  /// finished the choice through a stop string (the scheduler must then be told).
  choice_delta add_tokens(int32_t index, const std::vector<sampled_wire>& tokens, finish_reason finish,
                          int32_t stop_token, bool& stopped_by_string);
  /// Finishes every unfinished choice with `reason`, flushing held-back text.
  std::vector<choice_delta> finish_all(finish_reason reason);

  bool finished(int32_t index) const { return choices_.at(index).finish != finish_reason::none; }
  bool all_finished() const;
  int32_t n() const { return int32_t(choices_.size()); }
  /// prompt_tokens: the prompt; completion_tokens: every choice's outputs, resumed ones included.
  usage_counts usage() const;
  const std::vector<int32_t>& token_ids(int32_t index) const { return choices_.at(index).token_ids; }
  /// The whole text streamed for a choice so far.
  const std::string& text(int32_t index) const { return choices_.at(index).text; }

private:
  struct choice {
    std::vector<int32_t> token_ids;   // outputs kept
    std::vector<int32_t> window_ids;  // prompt tail, then outputs: the detokenization context
    int32_t prefix_offset = 0;        // window_ids[prefix_offset:read_offset] is already decoded
    int32_t read_offset = 0;
    std::unique_ptr<detokenizer_stream> stream; // when the detokenizer streams itself
    std::string text;                 // decoded output text (emitted and held back)
    size_t emitted = 0;               // text[0:emitted] has been streamed
    finish_reason finish = finish_reason::none;
  };

  /// Text that `token` makes final; `flush` releases everything held back; `drop` leaves the
  /// token's own text out (a stop token).
  std::string next_text(choice& c, int32_t token, bool flush, bool drop);
  std::string decode_window(choice& c, bool flush);
  /// Length of the longest suffix of `text` that is a proper prefix of a stop string.
  size_t held_back(const std::string& text) const;
  void emit(choice& c, choice_delta& d);

  std::shared_ptr<const detokenizer> detok_;
  std::vector<choice> choices_;
  std::vector<std::string> stop_;
  size_t max_stop_len_ = 0;
  bool include_stop_str_ = false;
  bool skip_special_ = true;
  int32_t min_tokens_ = 0;
  int32_t logprobs_ = -1;
  int32_t prompt_tokens_ = 0;
};

} // namespace actorserve
