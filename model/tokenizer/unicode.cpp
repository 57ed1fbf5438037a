#include "model/tokenizer/unicode.hpp"

#include "model/error.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <utility>
#include <memory>

namespace actorserve::tokenization {

char32_t next_code_point(std::string_view text, size_t& pos) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  size_t len = utf8_length(lead);
  if (pos + len > text.size()) { // defensive: callers pass validated text
    ++pos;
    return 0xfffd;
  }
  char32_t cp = lead & (0x7f >> len);
  for (size_t i = 1; i < len; ++i)
    cp = (cp << 6) | (byte(pos + i) & 0x3f);
  pos += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

namespace {

// Length of the well-formed prefix (0..len) of the sequence at bytes[pos], following the table
// of well-formed byte sequences in the Unicode standard (ch. 3, table 3-7). Returns the full
// length when the sequence is complete and valid; `complete` tells which case it is.
size_t valid_prefix(std::string_view bytes, size_t pos, bool& complete) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  unsigned char lead = b(pos);
  complete = false;
  size_t need;
  unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
  if (lead < 0x80) {
    complete = true;
    return 1;
  } else if (lead >= 0xc2 && lead <= 0xdf) {
    need = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 3;
    if (lead == 0xe0)
      lo = 0xa0;
    if (lead == 0xed)
      hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 4;
    if (lead == 0xf0)
      lo = 0x90;
    if (lead == 0xf4)
      hi = 0x8f;
  } else {
    return 0; // 0x80..0xc1, 0xf5..0xff never start a sequence
  }
  size_t n = 1;
  for (; n < need; ++n) {
    if (pos + n >= bytes.size())
      return n;
    unsigned char c = b(pos + n);
    unsigned char l = n == 1 ? lo : 0x80, h = n == 1 ? hi : 0xbf;
    if (c < l || c > h)
      return n;
  }
  complete = true;
  return need;
}

} // namespace

size_t find_invalid_utf8(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    bool complete;
    size_t n = valid_prefix(bytes, pos, complete);
    if (!complete)
      return pos;
    pos += n;
  }
  return bytes.size();
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete;
    size_t n = valid_prefix(bytes, pos, complete);
    if (complete) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      out.append("\xef\xbf\xbd");
      pos += n == 0 ? 1 : n; // a maximal ill-formed subpart is replaced as one
    }
  }
  return out;
}

bool ends_with_incomplete_utf8(std::string_view bytes) {
  // Look at the last (at most 3) bytes for a lead byte whose sequence is cut off.
  size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = bytes.size(); pos-- > start;) {
    auto c = static_cast<unsigned char>(bytes[pos]);
    if ((c & 0xc0) == 0x80)
      continue;
    bool complete;
    size_t n = valid_prefix(bytes, pos, complete);
    return !complete && pos + n == bytes.size() && n > 0;
  }
  return false;
}

bool is_whitespace(char32_t cp) {
  switch (cp) {
  case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
  case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
    return true;
  default:
    return cp >= 0x2000 && cp <= 0x200a;
  }
}

bool is_numeric(char32_t cp) {
  if (cp < 0x80)
    return cp >= '0' && cp <= '9';
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_punctuation(char32_t cp) {
  if (cp < 0x80)
    return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) ||
           (cp >= 0x7b && cp <= 0x7e);
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_nonspacing_mark(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN;
}

bool is_regex_word(char32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (cp == 0x200c || cp == 0x200d)
    return true;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  switch (cat) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
    return true;
  default:
    // Other_Alphabetic outside the mark categories: the circled letters.
    return (cp >= 0x24b6 && cp <= 0x24e9) || (cp >= 0x1f130 && cp <= 0x1f149) ||
           (cp >= 0x1f150 && cp <= 0x1f169) || (cp >= 0x1f170 && cp <= 0x1f189);
  }
}

void append_lowercase(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    return;
  }
  if (cp == 0x130) { // the one unconditional multi-character lowercase mapping
    out.append("i\xcc\x87");
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
}

namespace {

// Code points that utf8proc (Unicode 15) decomposes or gives a combining class but that Hugging
// Face tokenizers' normalization tables (an older Unicode, about 9.0) treat as unassigned: for
// them tokenizers neither decomposes, composes nor reorders. Found by comparing NFD, NFKD and
// canonical reordering of every code point between the two (tokenizers 0.23.2).
constexpr std::pair<char32_t, char32_t> unknown_to_tokenizers[] = {
    {0x07fd, 0x07fd}, {0x0898, 0x089f}, {0x08ca, 0x08d3}, {0x09fe, 0x09fe}, {0x0c3c, 0x0c3c}, {0x0d3b, 0x0d3c},
    {0x0eba, 0x0eba}, {0x1715, 0x1715}, {0x1abf, 0x1ace}, {0x1df6, 0x1dfa}, {0x32ff, 0x32ff}, {0xa7f2, 0xa7f4},
    {0xa82c, 0xa82c}, {0xab69, 0xab69}, {0x10781, 0x10785}, {0x10787, 0x107b0}, {0x107b2, 0x107ba}, {0x10d24, 0x10d27},
    {0x10eab, 0x10eac}, {0x10efd, 0x10eff}, {0x10f46, 0x10f50}, {0x10f82, 0x10f85}, {0x11070, 0x11070}, {0x1133b, 0x1133b},
    {0x1145e, 0x1145e}, {0x11839, 0x1183a}, {0x11938, 0x11938}, {0x1193d, 0x1193e}, {0x11943, 0x11943}, {0x119e0, 0x119e0},
    {0x11a34, 0x11a34}, {0x11a47, 0x11a47}, {0x11a99, 0x11a99}, {0x11d42, 0x11d42}, {0x11d44, 0x11d45}, {0x11d97, 0x11d97},
    {0x11f41, 0x11f42}, {0x16ff0, 0x16ff1}, {0x1e030, 0x1e06d}, {0x1e08f, 0x1e08f}, {0x1e130, 0x1e136}, {0x1e2ae, 0x1e2ae},
    {0x1e2ec, 0x1e2ef}, {0x1e4ec, 0x1e4ef}, {0x1f16c, 0x1f16c}, {0x1fbf0, 0x1fbf9}};

bool is_unknown_to_tokenizers(char32_t cp) {
  const auto* end = std::end(unknown_to_tokenizers);
  const auto* it = std::upper_bound(std::begin(unknown_to_tokenizers), end, cp,
                                    [](char32_t v, const auto& range) { return v < range.first; });
  return it != std::begin(unknown_to_tokenizers) && cp <= (it - 1)->second;
}

std::string utf8proc_normalize(std::string_view text, int options) {
  utf8proc_uint8_t* result = nullptr;
  auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                          static_cast<utf8proc_ssize_t>(text.size()), &result,
                          static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(result, &std::free);
  if (len < 0)
    throw model_error(std::string("tokenizer: unicode normalization failed: ") + utf8proc_errmsg(len));
  return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(len));
}

} // namespace

std::string normalize_unicode(std::string_view text, normal_form form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
  case normal_form::nfc: options |= UTF8PROC_COMPOSE; break;
  case normal_form::nfd: options |= UTF8PROC_DECOMPOSE; break;
  case normal_form::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
  case normal_form::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  // ASCII is invariant under every normal form: skip the library call.
  bool ascii = true;
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii)
    return std::string(text);
  // Characters unknown to tokenizers are starters that never change: normalize the runs
  // between them and keep them as they are.
  std::string out;
  size_t run_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t start = pos;
    if (!is_unknown_to_tokenizers(next_code_point(text, pos)))
      continue;
    if (start > run_start)
      out.append(utf8proc_normalize(text.substr(run_start, start - run_start), options));
    out.append(text.substr(start, pos - start));
    run_start = pos;
  }
  if (run_start == 0)
    return utf8proc_normalize(text, options);
  if (run_start < text.size())
    out.append(utf8proc_normalize(text.substr(run_start), options));
  return out;
}

} // namespace actorserve::tokenization
