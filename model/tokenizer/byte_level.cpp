#include "model/tokenizer/byte_level.hpp"

#include "model/tokenizer/unicode.hpp"

namespace actorserve::tokenization {

namespace {

struct byte_tables {
  std::array<char32_t, 256> to_code_point{};
  std::array<std::string, 256> to_utf8{};
  std::array<int16_t, 0x144> from_code_point{}; // every mapped code point is below U+0144

  byte_tables() {
    from_code_point.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae); };
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
      to_code_point[b] = cp;
      append_utf8(to_utf8[b], cp);
      from_code_point[cp] = static_cast<int16_t>(b);
    }
  }
};

const byte_tables& tables() {
  static const byte_tables t;
  return t;
}

} // namespace

char32_t byte_to_code_point(uint8_t b) { return tables().to_code_point[b]; }

int code_point_to_byte(char32_t cp) {
  return cp < tables().from_code_point.size() ? tables().from_code_point[cp] : -1;
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& t = tables();
  for (char c : bytes)
    out.append(t.to_utf8[static_cast<uint8_t>(c)]);
}

bool decode_byte_level(std::string_view token, std::string& out) {
  size_t mark = out.size();
  size_t pos = 0;
  while (pos < token.size()) {
    int b = code_point_to_byte(next_code_point(token, pos));
    if (b < 0) {
      out.resize(mark);
      return false;
    }
    out.push_back(static_cast<char>(b));
  }
  return true;
}

} // namespace actorserve::tokenization
