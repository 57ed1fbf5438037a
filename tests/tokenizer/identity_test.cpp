// Identity with Hugging Face `tokenizers` 0.23 on the corpus: ids without and with special
// tokens, decoded text with and without skip_special_tokens, and decoding of random id lists
// (byte-fallback and special ids favoured), for every real tokenizer and every variant.
#include "model/tokenizer/unicode.hpp"
#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

using namespace actorserve;
using namespace actorserve::testing;

namespace {

std::string show(const std::string& s) {
  std::ostringstream out;
  for (unsigned char c : s.substr(0, 120)) {
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out << c;
    else
      out << "\\x" << std::hex << int(c) << std::dec;
  }
  return out.str();
}

// The ids from a few before the first difference with `other` on.
std::string show(const std::vector<uint32_t>& ids, const std::vector<uint32_t>& other = {}) {
  size_t diff = 0;
  while (diff < ids.size() && diff < other.size() && ids[diff] == other[diff])
    ++diff;
  size_t from = other.empty() || diff < 5 ? 0 : diff - 5;
  std::ostringstream out;
  out << (from ? "[..." + std::to_string(from) + ": " : "[");
  for (size_t i = from; i < ids.size() && i < from + 40; ++i)
    out << (i > from ? "," : "") << ids[i];
  out << (ids.size() > from + 40 ? ",...]" : "]");
  return out.str();
}

struct mismatch_log {
  size_t count = 0;
  std::ostringstream first;
  void add(const std::string& what) {
    if (count++ < 6)
      first << what << "\n";
  }
};

void check_fixture(const std::string& name) {
  tokenizer_fixture fixture = load_tokenizer_fixture(name);
  tokenizer tok = load_fixture_tokenizer(fixture);
  const auto& corpus = tokenizer_corpus();
  mismatch_log encode_log, special_log, decode_log, random_log;
  for (const auto& c : fixture.corpus) {
    REQUIRE(c.index < corpus.size());
    const std::string& text = corpus[c.index];
    auto ids = tok.encode(text, false);
    if (ids != c.ids)
      encode_log.add("#" + std::to_string(c.index) + " \"" + show(text) + "\": got " + show(ids, c.ids) + " want " + show(c.ids, ids));
    if (c.checks_special) {
      auto want = c.ids_with_special.value_or(c.ids);
      auto got = tok.encode(text, true);
      if (got != want)
        special_log.add("#" + std::to_string(c.index) + ": got " + show(got, want) + " want " + show(want, got));
    }
    std::string want_decoded = c.decoded.value_or(text);
    std::string want_skip = c.decoded_skip.value_or(want_decoded);
    std::string decoded = tok.decode(c.ids, false), skipped = tok.decode(c.ids, true);
    if (decoded != want_decoded || skipped != want_skip)
      decode_log.add("#" + std::to_string(c.index) + ": got \"" + show(decoded) + "\" / \"" + show(skipped) +
                     "\" want \"" + show(want_decoded) + "\" / \"" + show(want_skip) + "\"");
  }
  for (size_t k = 0; k < fixture.random.size(); ++k) {
    const auto& r = fixture.random[k];
    std::string decoded = tok.decode(r.ids, false), skipped = tok.decode(r.ids, true);
    if (decoded != r.decoded || skipped != r.decoded_skip)
      random_log.add("random #" + std::to_string(k) + " " + show(r.ids) + ": got \"" + show(decoded) + "\" / \"" +
                     show(skipped) + "\" want \"" + show(r.decoded) + "\" / \"" + show(r.decoded_skip) + "\"");
  }
  INFO(name << ": " << fixture.corpus.size() << " corpus strings, " << fixture.random.size() << " random id lists");
  INFO("encode mismatches: " << encode_log.count << "\n" << encode_log.first.str());
  INFO("encode with special tokens mismatches: " << special_log.count << "\n" << special_log.first.str());
  INFO("decode mismatches: " << decode_log.count << "\n" << decode_log.first.str());
  INFO("random decode mismatches: " << random_log.count << "\n" << random_log.first.str());
  CHECK(fixture.corpus.size() > 700);
  CHECK(encode_log.count + special_log.count + decode_log.count + random_log.count == 0);
}

} // namespace

TEST_CASE("tokenizer: identity with HF tokenizers - llama3", "[tokenizer][identity]") { check_fixture("llama3"); }
TEST_CASE("tokenizer: identity with HF tokenizers - qwen3", "[tokenizer][identity]") { check_fixture("qwen3"); }
TEST_CASE("tokenizer: identity with HF tokenizers - deepseek_v3", "[tokenizer][identity]") { check_fixture("deepseek_v3"); }
TEST_CASE("tokenizer: identity with HF tokenizers - llama2", "[tokenizer][identity]") { check_fixture("llama2"); }
TEST_CASE("tokenizer: identity with HF tokenizers - mistral_nemo", "[tokenizer][identity]") { check_fixture("mistral_nemo"); }
TEST_CASE("tokenizer: identity with HF tokenizers - demo model", "[tokenizer][identity]") { check_fixture("demo"); }

TEST_CASE("tokenizer: identity with HF tokenizers - variants of the real files", "[tokenizer][identity]") {
  // Each variant swaps normalizer / pre-tokenizer / post-processor / decoder / model flags /
  // added tokens of a real file, to cover what the published files do not use.
  size_t variants = 0;
  for (const auto& name : tokenizer_fixture_names()) {
    if (name.rfind("v_", 0) != 0)
      continue;
    ++variants;
    SECTION(name) { check_fixture(name); }
  }
  CHECK(variants >= 6);
}

TEST_CASE("tokenizer: decode(encode(s)) == s where the tokenizer is lossless", "[tokenizer]") {
  const auto& corpus = tokenizer_corpus();
  for (std::string name : {"llama3", "deepseek_v3", "mistral_nemo"}) {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir(name));
    size_t bad = 0;
    for (const auto& s : corpus)
      bad += tok.decode(tok.encode(s)) != s;
    INFO(name);
    CHECK(bad == 0);
  }
  // Qwen3 normalizes to NFC first: the round trip gives the NFC form.
  tokenizer qwen = tokenizer::from_dir(real_tokenizer_dir("qwen3"));
  size_t bad = 0, changed = 0;
  for (const auto& s : corpus) {
    std::string nfc = tokenization::normalize_unicode(s, tokenization::normal_form::nfc);
    bad += qwen.decode(qwen.encode(s)) != nfc;
    changed += nfc != s;
  }
  CHECK(bad == 0);
  CHECK(changed > 20); // the corpus does exercise the normalizer
  // Llama 2 writes spaces as U+2581 and decodes U+2581 as a space, and its normalizer prepends
  // a space to the text after each special token: lossless for text with neither.
  tokenizer llama2 = tokenizer::from_dir(real_tokenizer_dir("llama2"));
  bad = 0;
  size_t checked = 0;
  for (const auto& s : corpus) {
    auto ids = llama2.encode(s);
    bool has_special = std::any_of(ids.begin(), ids.end(), [&](uint32_t id) { return llama2.is_special(id); });
    if (s.find("\xe2\x96\x81") == std::string::npos && !has_special) {
      ++checked;
      bad += llama2.decode(ids) != s;
    }
  }
  CHECK(checked > 2000);
  CHECK(bad == 0);
}
