#pragma once
// UTF-8 and Unicode helpers for the tokenizer. The character classes follow what Hugging Face
// `tokenizers` (Rust) uses, since identity with it is the goal: Rust's `char::is_whitespace`
// (the White_Space property), `char::is_numeric` (categories Nd, Nl, No), and so on.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace actorserve::tokenization {

/// Decodes the code point starting at text[pos] (text must be valid UTF-8) and advances pos.
char32_t next_code_point(std::string_view text, size_t& pos);

/// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

/// Byte length of the UTF-8 sequence that starts with `lead` (1 for continuation bytes).
inline size_t utf8_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead >= 0xf0)
    return 4;
  if (lead >= 0xe0)
    return 3;
  if (lead >= 0xc0)
    return 2;
  return 1;
}

/// Offset of the first byte that is not part of well-formed UTF-8, or text.size() if none.
size_t find_invalid_utf8(std::string_view bytes);

/// Rust's `String::from_utf8_lossy`: each maximal ill-formed subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

/// True when the bytes end in the middle of a UTF-8 sequence that more bytes could complete.
bool ends_with_incomplete_utf8(std::string_view bytes);

bool is_whitespace(char32_t cp);  // White_Space property (Rust char::is_whitespace)
bool is_numeric(char32_t cp);     // general category Nd, Nl or No (Rust char::is_numeric)
bool is_punctuation(char32_t cp); // ASCII punctuation or category P* (tokenizers' is_punc)
bool is_nonspacing_mark(char32_t cp); // category Mn
bool is_regex_word(char32_t cp);  // Rust regex `\w`: Alphabetic, M, Nd, Pc, Join_Control

/// Rust's char::to_lowercase, appended as UTF-8 (full mapping: U+0130 gives two characters).
void append_lowercase(std::string& out, char32_t cp);

enum class normal_form { nfc, nfd, nfkc, nfkd };
/// Unicode normalization of valid UTF-8 text (utf8proc).
std::string normalize_unicode(std::string_view text, normal_form form);

} // namespace actorserve::tokenization
