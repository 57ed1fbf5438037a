// Request state: incremental detokenization, stop strings across token boundaries with
// held-back text, finish reasons, logprobs.
#include "actors/request_state.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>

using namespace actorserve;

namespace {

// Token id -> bytes; decoding concatenates and, like byte-level tokenizers, shows an
// incomplete UTF-8 character at the end as U+FFFD. Id 0 is a special token ("<eos>").
class table_detokenizer : public detokenizer {
public:
  std::map<int32_t, std::string> pieces;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id == 0 && skip_special_tokens)
        continue;
      auto it = pieces.find(id);
      s += it == pieces.end() ? "?" : it->second;
    }
    // Trailing incomplete UTF-8 sequence -> U+FFFD.
    size_t i = s.size();
    int back = 0;
    while (i > 0 && back < 4 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) {
      --i;
      ++back;
    }
    if (i > 0) {
      uint8_t lead = uint8_t(s[i - 1]);
      int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
      if (need > back) {
        s.resize(i - 1);
        s += "\xEF\xBF\xBD";
      }
    }
    return s;
  }
};

std::shared_ptr<table_detokenizer> words() {
  auto d = std::make_shared<table_detokenizer>();
  d->pieces = {{0, "<eos>"}, {1, "Hel"}, {2, "lo"}, {3, " Wor"}, {4, "ld"}, {5, "!"}, {6, "\xE2\x82"}, {7, "\xAC"},
               {8, " the"}, {9, " end"}, {10, "a"}, {11, "b"}};
  return d;
}

std::vector<sampled_wire> toks(std::initializer_list<int32_t> ids) {
  std::vector<sampled_wire> v;
  for (int32_t id : ids) {
    sampled_wire w;
    w.token = id;
    v.push_back(w);
  }
  return v;
}

generate_request req(std::vector<std::string> stop = {}) {
  generate_request r;
  r.prompt_token_ids = {8, 9};
  r.stop = std::move(stop);
  return r;
}

} // namespace

TEST_CASE("text is streamed incrementally", "[request_state]") {
  request_state st(req(), words());
  bool by_string = false;
  std::string all;
  for (int32_t id : {1, 2, 3, 4, 5}) {
    auto d = st.add_tokens(0, toks({id}), finish_reason::none, -1, by_string);
    CHECK(d.token_ids == std::vector<int32_t>{id});
    all += d.text;
  }
  CHECK(all == "Hello World!");
  CHECK(st.text(0) == "Hello World!");
  CHECK(st.usage().completion_tokens == 5);
  CHECK(st.usage().prompt_tokens == 2);
}

TEST_CASE("a character split over two tokens is emitted whole", "[request_state]") {
  request_state st(req(), words());
  bool by_string = false;
  auto d1 = st.add_tokens(0, toks({6}), finish_reason::none, -1, by_string);
  CHECK(d1.text.empty());
  auto d2 = st.add_tokens(0, toks({7}), finish_reason::none, -1, by_string);
  CHECK(d2.text == "\xE2\x82\xAC");
}

TEST_CASE("a stop string across token boundaries is held back, then cut", "[request_state]") {
  request_state st(req({"lo Wo"}), words());
  bool by_string = false;
  auto d1 = st.add_tokens(0, toks({1}), finish_reason::none, -1, by_string);
  CHECK(d1.text == "He"); // "l" could start "lo Wo"
  auto d2 = st.add_tokens(0, toks({2}), finish_reason::none, -1, by_string);
  CHECK(d2.text == "l"); // "lo" could start "lo Wo"
  CHECK_FALSE(by_string);
  auto d3 = st.add_tokens(0, toks({3, 4}), finish_reason::none, -1, by_string);
  CHECK(by_string);
  CHECK(d3.finish == finish_reason::stop);
  CHECK(d3.stop_str == "lo Wo");
  CHECK(d3.text.empty());
  CHECK(d3.token_ids == std::vector<int32_t>{3}); // the token after the match is dropped
  CHECK(st.text(0) == "Hel");
  CHECK(st.finished(0));
}

TEST_CASE("held-back text is released once it cannot match", "[request_state]") {
  request_state st(req({"lox"}), words());
  bool by_string = false;
  CHECK(st.add_tokens(0, toks({1}), finish_reason::none, -1, by_string).text == "He");
  CHECK(st.add_tokens(0, toks({2}), finish_reason::none, -1, by_string).text == "l");
  CHECK(st.add_tokens(0, toks({5}), finish_reason::none, -1, by_string).text == "lo!");
}

TEST_CASE("include_stop_str_in_output keeps the stop string", "[request_state]") {
  auto r = req({"World"});
  r.include_stop_str_in_output = true;
  request_state st(r, words());
  bool by_string = false;
  std::string all;
  for (int32_t id : {1, 2, 3, 4, 5})
    all += st.add_tokens(0, toks({id}), finish_reason::none, -1, by_string).text;
  CHECK(all == "Hello World");
}

TEST_CASE("stop strings are not matched before min_tokens", "[request_state]") {
  auto r = req({"a"});
  r.min_tokens = 2;
  request_state st(r, words());
  bool by_string = false;
  auto d = st.add_tokens(0, toks({10}), finish_reason::none, -1, by_string);
  CHECK_FALSE(by_string);
  d = st.add_tokens(0, toks({10}), finish_reason::none, -1, by_string);
  CHECK(by_string);
  CHECK(st.text(0) == "a");
}

TEST_CASE("the scheduler's finish flushes held text, a stop token's text is dropped", "[request_state]") {
  request_state st(req({"lo W"}), words());
  bool by_string = false;
  st.add_tokens(0, toks({1}), finish_reason::none, -1, by_string);
  auto d = st.add_tokens(0, toks({2}), finish_reason::length, -1, by_string);
  CHECK(d.finish == finish_reason::length);
  CHECK(d.text == "llo");

  auto r2 = req();
  r2.skip_special_tokens = false;
  request_state eos(r2, words());
  d = eos.add_tokens(0, toks({1, 0}), finish_reason::stop, 0, by_string);
  CHECK(d.finish == finish_reason::stop);
  CHECK(d.stop_token == 0);
  CHECK(d.text == "Hel");
  CHECK(d.token_ids == std::vector<int32_t>{1, 0});
}

TEST_CASE("n choices are independent, finish_all aborts the rest", "[request_state]") {
  auto r = req();
  r.n = 2;
  request_state st(r, words());
  bool by_string = false;
  st.add_tokens(0, toks({1, 2}), finish_reason::length, -1, by_string);
  st.add_tokens(1, toks({3}), finish_reason::none, -1, by_string);
  CHECK(st.finished(0));
  CHECK_FALSE(st.all_finished());
  auto rest = st.finish_all(finish_reason::abort);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].index == 1);
  CHECK(rest[0].finish == finish_reason::abort);
  CHECK(st.all_finished());
  CHECK(st.usage().completion_tokens == 3);
}

TEST_CASE("logprobs survive as bit patterns, -inf included", "[request_state]") {
  auto r = req();
  r.sampling.logprobs = 1;
  request_state st(r, words());
  sampled_wire w;
  w.token = 1;
  w.logprob_bits = float_bits(-std::numeric_limits<float>::infinity());
  w.top_tokens = {4};
  w.top_logprob_bits = {float_bits(-0.25f)};
  bool by_string = false;
  auto d = st.add_tokens(0, {w}, finish_reason::none, -1, by_string);
  REQUIRE(d.logprobs.size() == 1);
  CHECK(std::isinf(d.logprobs[0].logprob));
  CHECK(d.logprobs[0].top == std::vector<std::pair<int32_t, float>>{{4, -0.25f}});
}

TEST_CASE("without a detokenizer only token ids flow", "[request_state]") {
  request_state st(req(), nullptr);
  bool by_string = false;
  auto d = st.add_tokens(0, toks({1, 2}), finish_reason::none, -1, by_string);
  CHECK(d.text.empty());
  CHECK(d.token_ids.size() == 2);
}
