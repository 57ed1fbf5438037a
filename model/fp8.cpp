#include "model/fp8.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace actorserve {

namespace {

// The 127 non-negative finite E4M3 values, by bit pattern 0x00..0x7e (increasing).
const std::array<float, 127>& positive_values() {
  static const std::array<float, 127> table = [] {
    std::array<float, 127> t{};
    for (int b = 0; b < 127; ++b) {
      const int exponent = b >> 3, mantissa = b & 7;
      t[size_t(b)] = exponent == 0 ? std::ldexp(float(mantissa) / 8.0f, -6)
                                   : std::ldexp(1.0f + float(mantissa) / 8.0f, exponent - 7);
    }
    return t;
  }();
  return table;
}

} // namespace

uint8_t f32_to_e4m3(float v) {
  if (std::isnan(v))
    return 0x7f;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  const float a = std::fabs(v);
  const auto& t = positive_values();
  if (a >= t.back())
    return uint8_t(sign | 0x7e); // saturate (448)
  // First value >= a; the answer is it or the one below, the nearer, ties to the even pattern.
  const auto it = std::lower_bound(t.begin(), t.end(), a);
  int hi = int(it - t.begin());
  if (t[size_t(hi)] == a || hi == 0)
    return uint8_t(sign | hi);
  const int lo = hi - 1;
  const float d_lo = a - t[size_t(lo)], d_hi = t[size_t(hi)] - a; // exact: values are close in binade
  const int pick = d_lo < d_hi ? lo : d_hi < d_lo ? hi : (lo % 2 == 0 ? lo : hi);
  return uint8_t(sign | pick);
}

float e4m3_to_f32(uint8_t bits) {
  const int magnitude = bits & 0x7f;
  if (magnitude == 0x7f)
    return std::nanf("");
  const float a = positive_values()[size_t(magnitude)];
  return bits & 0x80 ? -a : a;
}

void quantize_rows_e4m3(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c)
      amax = std::max(amax, std::fabs(row[c]));
    const float scale = amax > 0.0f ? amax / e4m3_max : 1.0f;
    scales[r] = scale;
    for (int64_t c = 0; c < cols; ++c)
      q[r * cols + c] = f32_to_e4m3(row[c] / scale);
  }
}

void round_rows_to_e4m3(float* w, int64_t rows, int64_t cols) {
  std::vector<uint8_t> q(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    float scale = 1.0f;
    quantize_rows_e4m3(w + r * cols, 1, cols, q.data(), &scale);
    for (int64_t c = 0; c < cols; ++c)
      w[r * cols + c] = e4m3_to_f32(q[size_t(c)]) * scale;
  }
}

} // namespace actorserve
