// Bad input gets a model_error, never a crash or a hang: random bytes and invalid UTF-8 to
// encode, random ids to decode, and broken tokenizer.json files (truncated, wrong types, random
// bytes). Also: the byte-level tokenizer that `make-model` writes, and hand-made cases for
// features the real files do not show clearly.
#include "model/byte_tokenizer.hpp"
#include "model/error.hpp"
#include "model/tokenizer/incremental_detokenizer.hpp"
#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/unicode.hpp"
#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>

using namespace actorserve;
using namespace actorserve::testing;
using nlohmann::json;

namespace {

// A small byte-level BPE with a Split regex, NFC, a template post-processor and added tokens:
// every kind of component the mutation test below can break.
json small_tokenizer_json() {
  json vocab = json::object();
  std::vector<std::string> alphabet;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tokenization::append_utf8(s, tokenization::byte_to_code_point(static_cast<uint8_t>(b)));
    vocab[s] = b;
    alphabet.push_back(s);
  }
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  vocab["\xc4\xa0w"] = 260; // "Ġw"
  json merges = {"h e", "l l", "he ll", "hell o", json::array({"\xc4\xa0", "w"})};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {{{"id", 261}, {"content", "<s>"}, {"special", true}, {"normalized", false}, {"lstrip", false},
         {"rstrip", false}, {"single_word", false}},
        {{"id", 262}, {"content", "<mask>"}, {"special", false}, {"normalized", true}, {"lstrip", true},
         {"rstrip", true}, {"single_word", true}}}},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Replace"}, {"pattern", {{"Regex", "\\d+"}}}, {"content", "0"}}}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", "\\s+|\\p{L}+|\\p{N}"}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {261}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteLevel"}}, {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"}, {"unk_token", nullptr}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}}};
}

// Every value in the tree, by JSON pointer.
void collect_pointers(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "vocab") // 261 entries: mutate only the object itself
        continue;
      collect_pointers(it.value(), at / it.key(), out);
    }
  else if (j.is_array())
    for (size_t i = 0; i < j.size(); ++i)
      collect_pointers(j[i], at / i, out);
}

// Loading either works or throws model_error; a loaded tokenizer encodes and decodes without
// crashing (model_error allowed).
void load_and_use(const std::string& text) {
  try {
    tokenizer tok = tokenizer::from_json(text);
    for (std::string s : {"hello world", " <s>hello <mask> 123", "", "\xc3\xa9\xe4\xbd\xa0"}) {
      auto ids = tok.encode(s, true);
      (void)tok.decode(ids, false);
      (void)tok.decode(ids, true);
    }
    std::vector<uint32_t> garbage = {0, 1, 258, 259, 262, 9999, 4000000000u};
    (void)tok.decode(garbage, false);
  } catch (const model_error&) {
  }
}

} // namespace

TEST_CASE("tokenizer: the small hand-made tokenizer works as written", "[tokenizer]") {
  tokenizer tok = tokenizer::from_json(small_tokenizer_json().dump());
  CHECK(tok.encode("hello") == std::vector<uint32_t>{259});
  CHECK(tok.encode("hello", true) == std::vector<uint32_t>{261, 259});
  // The Split regex isolates " " from "w", so the "Ġ w" merge never applies.
  CHECK(tok.encode("hello w") == std::vector<uint32_t>{259, 32, 119});
  // Digits are replaced by the normalizer; <mask> (normalized, lstrip/rstrip) takes its spaces.
  CHECK(tok.decode(tok.encode("he 42 <mask> ll")) == "he 0<mask>ll");
  CHECK(tok.vocab_size() == 263);
  CHECK(tok.is_special(261));
  CHECK_FALSE(tok.is_special(262));
}

TEST_CASE("tokenizer: invalid UTF-8 is refused, random valid text always encodes", "[tokenizer][fuzz]") {
  tokenizer tok = tokenizer::from_dir(real_tokenizer_dir("llama3"));
  std::mt19937 rng(1234);
  size_t refused = 0;
  for (int n = 0; n < 3000; ++n) {
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng() % 256);
    bool valid = tokenization::find_invalid_utf8(bytes) == bytes.size();
    if (valid) {
      CHECK(tok.decode(tok.encode(bytes)) == bytes);
    } else {
      CHECK_THROWS_AS(tok.encode(bytes), model_error);
      ++refused;
    }
  }
  CHECK(refused > 2000);
  // Valid UTF-8 made of random code points (all planes, controls, noncharacters).
  for (int n = 0; n < 1500; ++n) {
    std::string text;
    for (int k = static_cast<int>(rng() % 24); k > 0; --k) {
      char32_t cp = rng() % 0x110000;
      if (cp >= 0xd800 && cp <= 0xdfff)
        cp = 0xfffd;
      tokenization::append_utf8(text, cp);
    }
    REQUIRE(tokenization::find_invalid_utf8(text) == text.size());
    CHECK(tok.decode(tok.encode(text)) == text);
  }
  // The classic invalid sequences each give a clear error.
  for (std::string bad : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "a\x80", "\xe2\x82"})
    CHECK_THROWS_AS(tok.encode(bad), model_error);
}

TEST_CASE("tokenizer: random ids decode to valid UTF-8 and stream the same", "[tokenizer][fuzz]") {
  std::mt19937 rng(99);
  for (std::string name : {"llama2", "qwen3"}) {
    tokenizer tok = tokenizer::from_dir(real_tokenizer_dir(name));
    for (int n = 0; n < 300; ++n) {
      std::vector<uint32_t> ids(rng() % 30);
      for (auto& id : ids)
        id = rng() % 3 == 0 ? rng() % 300 : rng() % (tok.vocab_size() + 100); // some ids unknown
      std::string text = tok.decode(ids);
      CHECK(tokenization::find_invalid_utf8(text) == text.size());
      incremental_detokenizer detok(tok, false);
      std::string streamed;
      for (uint32_t id : ids)
        streamed += detok.add(id);
      streamed += detok.finish();
      CHECK(streamed == text);
    }
  }
}

TEST_CASE("tokenizer: broken tokenizer.json files give model_error", "[tokenizer][fuzz]") {
  json good = small_tokenizer_json();
  std::string text = good.dump();
  REQUIRE_NOTHROW(tokenizer::from_json(text));

  SECTION("truncated") {
    for (size_t cut = 0; cut < text.size(); cut += 7)
      CHECK_THROWS_AS(tokenizer::from_json(text.substr(0, cut)), model_error);
  }
  SECTION("every value replaced by values of the wrong type") {
    std::vector<json::json_pointer> pointers;
    collect_pointers(good, json::json_pointer(), pointers);
    const json replacements[] = {nullptr, -1, 0, 4294967296.0, "x", "(", json::array(), json::object(), true,
                                 json::array({1, 2})};
    size_t tried = 0;
    for (const auto& at : pointers) {
      if (at.empty())
        continue;
      for (const auto& r : replacements) {
        json broken = good;
        broken[at] = r;
        load_and_use(broken.dump());
        ++tried;
      }
      json removed = good;
      json& parent = removed[at.parent_pointer()];
      if (parent.is_object())
        parent.erase(at.back());
      else
        parent.erase(std::stoul(at.back()));
      load_and_use(removed.dump());
    }
    CHECK(tried > 500);
  }
  SECTION("specific errors name the problem") {
    auto error_of = [](const json& j) {
      try {
        tokenizer::from_json(j.dump());
      } catch (const model_error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    json j = good;
    j["model"]["merges"].push_back("zz qq");
    CHECK_THAT(error_of(j), Catch::Contains("not in the vocabulary"));
    j = good;
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-z";
    CHECK_THAT(error_of(j), Catch::Contains("invalid regex"));
    j = good;
    j["model"]["type"] = "Unigram";
    CHECK_THAT(error_of(j), Catch::Contains("unsupported model type"));
    j = good;
    j["decoder"] = {{"type", "CTC"}};
    CHECK_THAT(error_of(j), Catch::Contains("unsupported decoder type"));
    j = good;
    j["model"]["vocab"]["far"] = 3000000000u;
    CHECK_THAT(error_of(j), Catch::Contains("far beyond"));
    CHECK_THROWS_AS(tokenizer::from_dir("/nonexistent/dir"), model_error);
  }
  SECTION("random bytes") {
    std::mt19937 rng(7);
    for (int n = 0; n < 300; ++n) {
      std::string bytes(rng() % 200, '\0');
      for (auto& c : bytes)
        c = static_cast<char>(rng() % 256);
      load_and_use(bytes);
      // Random splices of the good file.
      std::string spliced = text;
      for (int k = 0; k < 5; ++k)
        spliced[rng() % spliced.size()] = static_cast<char>(rng() % 256);
      load_and_use(spliced);
    }
  }
}

TEST_CASE("tokenizer: the byte-level tokenizer make-model writes", "[tokenizer]") {
  tokenizer tok = tokenizer::from_json(byte_tokenizer_json());
  CHECK(tok.vocab_size() == static_cast<size_t>(byte_tokenizer_size));
  std::string text = "Hello, w\xc3\xb6rld! \xf0\x9f\x98\x80\n\t";
  auto ids = tok.encode(text);
  REQUIRE(ids.size() == text.size());
  for (size_t i = 0; i < text.size(); ++i)
    CHECK(ids[i] == static_cast<unsigned char>(text[i])); // id b is the byte b
  CHECK(tok.decode(ids) == text);
  auto with_specials = tok.encode("<|begin_of_text|><|user|>\nhi<|end|>");
  CHECK(with_specials == std::vector<uint32_t>{256, 258, '\n', 'h', 'i', 261});
  CHECK(tok.decode(with_specials, true) == "\nhi");
  CHECK(tok.decode(with_specials, false) == "<|begin_of_text|><|user|>\nhi<|end|>");
  CHECK(tok.is_special(byte_tokenizer_eos_id));
}
