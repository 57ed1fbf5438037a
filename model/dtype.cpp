#include "model/dtype.hpp"

#include <cmath>

namespace actorserve {

size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32: case dtype::i32: return 4;
    case dtype::f16: case dtype::bf16: return 2;
    case dtype::f8_e4m3: case dtype::i8: case dtype::u8: case dtype::bool_: return 1;
    case dtype::i64: return 8;
  }
  return 0;
}

std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::f8_e4m3: return "F8_E4M3";
    case dtype::i8: return "I8";
    case dtype::i32: return "I32";
    case dtype::i64: return "I64";
    case dtype::u8: return "U8";
    case dtype::bool_: return "BOOL";
  }
  return "?";
}

std::optional<dtype> parse_dtype(std::string_view name) {
  for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::f8_e4m3, dtype::i8, dtype::i32,
                  dtype::i64, dtype::u8, dtype::bool_})
    if (dtype_name(t) == name)
      return t;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { // subnormal: normalise
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);           // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);          // overflow -> inf
  if (abs < 0x38800000u) {                                          // subnormal or zero
    float a;
    std::memcpy(&a, &abs, 4);
    // value / 2^-24, rounded to nearest even by the FPU
    return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

float f8_e4m3_to_f32(uint8_t v) {
  uint32_t sign = v >> 7, exp = (v >> 3) & 0xfu, mant = v & 0x7u;
  float out;
  if (exp == 0xf && mant == 0x7)
    out = NAN;
  else if (exp == 0)
    out = std::ldexp(float(mant), -9); // subnormal: mant/8 * 2^-6
  else
    out = std::ldexp(1.0f + float(mant) / 8.0f, int(exp) - 7);
  return sign ? -out : out;
}

void convert_to_f32(dtype t, const void* src, float* dst, size_t count) {
  switch (t) {
    case dtype::f32:
      std::memcpy(dst, src, count * 4);
      return;
    case dtype::bf16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case dtype::f16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case dtype::f8_e4m3: {
      auto* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f8_e4m3_to_f32(s[i]);
      return;
    }
    case dtype::i8: {
      auto* s = static_cast<const int8_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = float(s[i]);
      return;
    }
    case dtype::i32: {
      auto* s = static_cast<const int32_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = float(s[i]);
      return;
    }
    default:
      break;
  }
  for (size_t i = 0; i < count; ++i) dst[i] = 0.0f;
}

} // namespace actorserve
