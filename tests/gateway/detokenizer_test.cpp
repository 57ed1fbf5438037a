// The engine gets the tokenizer's incremental detokenizer from the text frontend, so streamed
// text is exact for byte-fallback tokenizers (Llama 2, Mistral): multi-byte characters spelled
// as <0xNN> tokens come out whole, and Metaspace's leading space is right mid-sequence.
#include "actors/engine.hpp"
#include "gateway/text_frontend.hpp"
#include "tests/gateway/model_folder.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using actorserve::gateway::test::model_folder;

namespace {

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size())
      return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2)
        return false;
    i += len;
  }
  return true;
}

} // namespace

TEST_CASE("the frontend's engine detokenizer streams byte-fallback text exactly", "[gateway][detokenizer]") {
  actorserve::testing::temp_dir root;
  for (const std::string name : {"llama2", "mistral_nemo", "qwen3"}) {
    INFO(name);
    auto frontend = gateway::load_text_frontend(model_folder(name, root.path()));
    auto detok = frontend->engine_detokenizer();
    REQUIRE(detok);
    const std::vector<int32_t> prompt = frontend->encode("Tell me:", false);
    const std::vector<int32_t> ids = frontend->encode(" Hi 😀 naïve 中文 𝄞 x  y", false);
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), ids.begin(), ids.end());
    const std::string whole = frontend->decode(all, true);
    const std::string expected = whole.substr(frontend->decode(prompt, true).size());

    auto stream = detok->stream(prompt, true);
    REQUIRE(stream); // not the engine's decode-a-window fallback
    std::string streamed;
    int held = 0;
    for (int32_t id : ids) {
      std::string piece = stream->add(id);
      CHECK(valid_utf8(piece));
      held += piece.empty() ? 1 : 0;
      streamed += piece;
    }
    streamed += stream->finish();
    CHECK(streamed == expected);
    CHECK_THAT(expected, Catch::EndsWith("Hi 😀 naïve 中文 𝄞 x  y"));
    if (name == "llama2") {
      CHECK(held > 0); // byte-fallback pieces of one character were held until it was whole
      // Token-by-token decoding, which this replaces, would be wrong here.
      std::string naive;
      for (int32_t id : ids)
        naive += frontend->decode(std::span<const int32_t>(&id, 1), true);
      CHECK(naive != expected);
    }
  }
}

TEST_CASE("gateway: a tokenizer that covers few of the model's vocabulary rows is warned about",
          "[gateway][detokenizer]") {
  using actorserve::gateway::vocabulary_coverage_warning;
  // make-model's byte tokenizer with the Llama-3 row count: almost every id decodes to nothing.
  const std::string w = vocabulary_coverage_warning(260, 128256);
  CHECK(w.find("127996 ids without a token") != std::string::npos);
  CHECK(!vocabulary_coverage_warning(50000, 52000).empty()); // 2,000 rows, 3.8%
  CHECK(!vocabulary_coverage_warning(700, 1000).empty());    // 300 rows, 30%
  // Padding to a round row count is normal (Qwen2.5: 151,665 tokens, 151,936 rows).
  CHECK(vocabulary_coverage_warning(151665, 151936).empty());
  CHECK(vocabulary_coverage_warning(32000, 32000).empty());
  CHECK(vocabulary_coverage_warning(262, 320).empty()); // make-model's byte tokenizer, rows fitted to it
  CHECK(vocabulary_coverage_warning(872, 1000).empty()); // 128 rows
  CHECK(vocabulary_coverage_warning(128256, 128000).empty()); // more tokens than rows: not this warning
}
