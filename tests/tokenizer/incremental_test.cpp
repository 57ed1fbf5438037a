// Streaming detokenization: the pieces, concatenated, equal the full decode, and every piece is
// valid UTF-8, for every tokenizer, on the corpus encodings and on random id lists.
#include "model/tokenizer/incremental_detokenizer.hpp"
#include "model/tokenizer/unicode.hpp"
#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using namespace actorserve::testing;

namespace {

struct stream_result {
  std::string text;
  bool pieces_valid = true;
  size_t pieces = 0;
};

stream_result stream(const tokenizer& tok, const std::vector<uint32_t>& ids, bool skip,
                     std::span<const uint32_t> prompt = {}) {
  incremental_detokenizer detok(tok, skip, prompt);
  stream_result r;
  auto take = [&](const std::string& piece) {
    r.pieces += !piece.empty();
    r.pieces_valid = r.pieces_valid && tokenization::find_invalid_utf8(piece) == piece.size();
    r.text += piece;
  };
  for (uint32_t id : ids)
    take(detok.add(id));
  take(detok.finish());
  return r;
}

void check_streaming(const std::string& name) {
  tokenizer_fixture fixture = load_tokenizer_fixture(name);
  tokenizer tok = load_fixture_tokenizer(fixture);
  size_t bad = 0, invalid = 0, checked = 0, multi_piece = 0;
  std::string first_bad;
  auto check = [&](const std::vector<uint32_t>& ids, bool skip) {
    auto r = stream(tok, ids, skip);
    std::string full = tok.decode(ids, skip);
    ++checked;
    multi_piece += r.pieces > 1;
    invalid += !r.pieces_valid;
    if (r.text != full) {
      if (bad++ == 0)
        first_bad = "streamed \"" + r.text.substr(0, 200) + "\" vs decode \"" + full.substr(0, 200) + "\"";
    }
  };
  for (const auto& c : fixture.corpus) {
    check(c.ids, false);
    check(c.ids, true);
  }
  for (const auto& r : fixture.random) {
    check(r.ids, false);
    check(r.ids, true);
  }
  INFO(name << ": " << checked << " streams; first mismatch: " << first_bad);
  CHECK(bad == 0);
  CHECK(invalid == 0);
  CHECK(multi_piece > checked / 4); // text really is released along the way, not all at the end
}

} // namespace

TEST_CASE("tokenizer: streaming detokenization equals full decode - llama3", "[tokenizer][incremental]") {
  check_streaming("llama3");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - qwen3", "[tokenizer][incremental]") {
  check_streaming("qwen3");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - deepseek_v3", "[tokenizer][incremental]") {
  check_streaming("deepseek_v3");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - llama2", "[tokenizer][incremental]") {
  check_streaming("llama2");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - mistral_nemo", "[tokenizer][incremental]") {
  check_streaming("mistral_nemo");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - demo model", "[tokenizer][incremental]") {
  check_streaming("demo");
}
TEST_CASE("tokenizer: streaming detokenization equals full decode - variants", "[tokenizer][incremental]") {
  for (const auto& name : tokenizer_fixture_names())
    if (name.rfind("v_", 0) == 0) {
      SECTION(name) { check_streaming(name); }
    }
}

TEST_CASE("tokenizer: streaming holds back split UTF-8 and byte-fallback runs", "[tokenizer][incremental]") {
  SECTION("byte-level: a 4-byte emoji split over byte tokens is released whole") {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir("llama3"));
    // U+1F600 is F0 9F 98 80; feed it as four single-byte tokens.
    std::vector<uint32_t> ids;
    for (std::string byte_token : {std::string("ð"), std::string("Ł"), std::string("ĺ"), std::string("Ģ")})
      ids.push_back(tok.token_to_id(byte_token).value());
    REQUIRE(tok.decode(ids) == "\xf0\x9f\x98\x80");
    incremental_detokenizer detok(tok);
    CHECK(detok.add(ids[0]).empty());
    CHECK(detok.add(ids[1]).empty());
    CHECK(detok.add(ids[2]).empty());
    CHECK(detok.add(ids[3]) == "\xf0\x9f\x98\x80");
    CHECK(detok.finish().empty());
  }
  SECTION("byte fallback: a newline byte token waits for the next token") {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir("llama2"));
    auto ids = tok.encode("Hello\nworld");
    incremental_detokenizer detok(tok);
    std::string out;
    for (uint32_t id : ids) {
      std::string piece = detok.add(id);
      if (*tok.id_to_token(id) == "<0x0A>")
        CHECK(piece.empty());
      out += piece;
    }
    out += detok.finish();
    CHECK(out == "Hello\nworld");
  }
  SECTION("prompt context keeps the first space of the output (Llama 2 strips it when alone)") {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir("llama2"));
    auto prompt = tok.encode("Say hi:");
    auto output = tok.encode("Say hi: Hello there");
    output.erase(output.begin(), output.begin() + static_cast<std::ptrdiff_t>(prompt.size()));
    CHECK(stream(tok, output, true, prompt).text == " Hello there");
    CHECK(stream(tok, output, true).text == "Hello there");
  }
  SECTION("special tokens are dropped with skip_special_tokens and kept without") {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir("qwen3"));
    auto ids = tok.encode("<|im_start|>assistant\nHi<|im_end|>");
    CHECK(stream(tok, ids, true).text == "assistant\nHi");
    CHECK(stream(tok, ids, false).text == "<|im_start|>assistant\nHi<|im_end|>");
  }
}
