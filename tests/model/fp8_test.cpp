// FP8 E4M3 conversions and the per-row weight quantization of --quantization fp8 (the CPU
// reference of the CUDA kernels).
#include "model/fp8.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

using namespace actorserve;

TEST_CASE("e4m3: known values, saturation, NaN and ties to even", "[model][fp8]") {
  CHECK(f32_to_e4m3(1.0f) == 0x38);
  CHECK(f32_to_e4m3(-2.0f) == 0xc0);
  CHECK(f32_to_e4m3(448.0f) == 0x7e);
  CHECK(f32_to_e4m3(500.0f) == 0x7e);   // satfinite
  CHECK(f32_to_e4m3(-1e30f) == 0xfe);
  CHECK(f32_to_e4m3(std::ldexp(1.0f, -9)) == 0x01); // smallest subnormal
  CHECK(f32_to_e4m3(std::ldexp(1.0f, -11)) == 0x00); // below half of it
  CHECK(f32_to_e4m3(std::nanf("")) == 0x7f);
  CHECK(std::isnan(e4m3_to_f32(0x7f)));
  CHECK(std::isnan(e4m3_to_f32(0xff)));
  CHECK(e4m3_to_f32(0x7e) == 448.0f);
  CHECK(e4m3_to_f32(0x08) == std::ldexp(1.0f, -6)); // smallest normal
  CHECK(f32_to_e4m3(1.0625f) == 0x38);  // halfway 1.0 (even) / 1.125
  CHECK(f32_to_e4m3(1.1875f) == 0x3a);  // halfway 1.125 / 1.25 (even)
  CHECK(f32_to_e4m3(1.07f) == 0x39);    // above halfway
  // Every finite pattern round-trips.
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f)
      continue;
    INFO(b);
    CHECK(f32_to_e4m3(e4m3_to_f32(uint8_t(b))) == (b == 0x80 ? 0x80 : b));
  }
}

TEST_CASE("e4m3: per-row quantization keeps each row within half a step", "[model][fp8]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  const int64_t rows = 5, cols = 77;
  std::vector<float> w(size_t(rows * cols));
  for (auto& v : w)
    v = normal(rng);
  for (int64_t c = 0; c < cols; ++c)
    w[size_t(3 * cols + c)] = 0.0f; // an all-zero row
  std::vector<uint8_t> q(w.size());
  std::vector<float> scales(static_cast<size_t>(rows));
  quantize_rows_e4m3(w.data(), rows, cols, q.data(), scales.data());
  CHECK(scales[3] == 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c)
      amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
    bool hit_max = r == 3;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = w[size_t(r * cols + c)];
      const float back = e4m3_to_f32(q[size_t(r * cols + c)]) * scales[size_t(r)];
      hit_max = hit_max || (q[size_t(r * cols + c)] & 0x7f) == 0x7e;
      // Relative half step 2^-4 for normals; subnormals: absolute 2^-10 * scale.
      CHECK(std::fabs(back - x) <= std::max(std::fabs(x) / 16.0f, std::ldexp(scales[size_t(r)], -10)) * 1.0001f);
    }
    CHECK(hit_max); // the largest element maps to +-448
  }
  std::vector<float> rounded = w;
  round_rows_to_e4m3(rounded.data(), rows, cols);
  for (size_t i = 0; i < w.size(); ++i)
    CHECK(rounded[i] == e4m3_to_f32(q[i]) * scales[i / size_t(cols)]);
}
