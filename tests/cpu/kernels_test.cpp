// The CPU kernels against plain double-precision loops, both instruction-set versions, odd
// shapes; and the property the batch invariance rests on: every matmul element is dot().
#include "model/cpu_kernels.hpp"
#include "model/cpu_rope.hpp"
#include "model/thread_pool.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

using namespace actorserve;

namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v)
    x = dist(rng);
  return v;
}

struct isa_guard {
  cpu::kernel_isa saved = cpu::active_isa();
  ~isa_guard() { cpu::set_active_isa(saved); }
};

} // namespace

TEST_CASE("matmul matches a double-precision reference for odd shapes, and each element is dot()") {
  isa_guard guard;
  thread_pool pool(2);
  std::mt19937 rng(7);
  for (cpu::kernel_isa isa : {cpu::kernel_isa::portable, cpu::detect_isa()}) {
    cpu::set_active_isa(isa);
    for (int64_t rows : {1, 2, 3, 4, 5, 9})
      for (int64_t k : {1, 7, 8, 9, 37, 64})
        for (int64_t out : {1, 3, 13, 50}) {
          const auto x = random_vector(size_t(rows * k), rng);
          const auto w = random_vector(size_t(out * k), rng);
          const auto bias = random_vector(size_t(out), rng);
          std::vector<float> y(size_t(rows * out));
          cpu::matmul(pool, x.data(), rows, k, w.data(), out, bias.data(), y.data());
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < out; ++c) {
              double ref = bias[size_t(c)];
              for (int64_t i = 0; i < k; ++i)
                ref += double(x[size_t(r * k + i)]) * double(w[size_t(c * k + i)]);
              const float got = y[size_t(r * out + c)];
              INFO("isa " << int(isa) << " rows " << rows << " k " << k << " out " << out);
              REQUIRE(std::abs(got - ref) < 1e-5 * (1.0 + std::sqrt(double(k))));
              REQUIRE(got == cpu::dot(&x[size_t(r * k)], &w[size_t(c * k)], k) + bias[size_t(c)]);
            }
        }
  }
}

TEST_CASE("rmsnorm, silu_mul and axpy") {
  const std::vector<float> x{1.0f, -2.0f, 3.0f, 0.5f}, w{1.0f, 0.5f, 2.0f, -1.0f};
  std::vector<float> y(4);
  cpu::rmsnorm(x.data(), w.data(), 1, 4, 1e-5f, y.data());
  const double rms = std::sqrt((1 + 4 + 9 + 0.25) / 4.0 + 1e-5);
  for (size_t i = 0; i < 4; ++i)
    CHECK(y[i] == Approx(w[i] * x[i] / rms).epsilon(1e-6));
  const std::vector<float> gate_up{1.0f, -2.0f, 3.0f, 4.0f}; // gate {1, -2}, up {3, 4}
  std::vector<float> act(2);
  cpu::silu_mul(gate_up.data(), 1, 2, act.data());
  CHECK(act[0] == Approx(1.0 / (1.0 + std::exp(-1.0)) * 3.0));
  CHECK(act[1] == Approx(-2.0 / (1.0 + std::exp(2.0)) * 4.0));
  std::vector<float> acc(11, 1.0f), ones(11, 1.0f);
  cpu::axpy(0.5f, ones.data(), acc.data(), 11);
  for (float v : acc)
    CHECK(v == 1.5f);
}

TEST_CASE("rope rotates pairs (i, i + d/2) by position * inv_freq") {
  model_config c;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  const auto inv = rope_inv_freq(c);
  REQUIRE(inv.size() == 4);
  CHECK(inv[0] == 1.0f);
  CHECK(inv[1] == Approx(std::pow(10000.0, -0.25)));
  std::vector<float> v{1, 0, 0, 0, 0, 0, 0, 0};
  apply_rope(v.data(), 1, 8, 3, inv.data());
  CHECK(v[0] == Approx(std::cos(3.0)));
  CHECK(v[4] == Approx(std::sin(3.0))); // rotate_half: x[i + d/2] gets x[i] * sin
  c.rope_scaling.type = rope_scaling_type::linear;
  c.rope_scaling.factor = 4.0;
  CHECK(rope_inv_freq(c)[1] == Approx(std::pow(10000.0, -0.25) / 4.0));
  // llama3: wavelengths above original/low_freq_factor are scaled by 1/factor, below
  // original/high_freq_factor kept.
  c.rope_scaling = {rope_scaling_type::llama3, 8.0, 1.0, 4.0, 64};
  const auto l3 = rope_inv_freq(c);
  CHECK(l3[0] == inv[0]);                                 // wavelength 2*pi < 16: kept
  CHECK(l3[3] == Approx(inv[3] / 8.0f).epsilon(1e-6));    // wavelength ~6.3e3 > 64: scaled
}

TEST_CASE("thread_pool covers every index once and rethrows") {
  thread_pool pool(2);
  std::vector<int> hits(1000);
  pool.parallel_for(1000, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      ++hits[size_t(i)];
  });
  for (int h : hits)
    REQUIRE(h == 1);
  CHECK_THROWS_WITH(pool.parallel_for(100, 1, [](int64_t b, int64_t) {
    if (b == 50)
      throw std::runtime_error("boom");
  }), "boom");
  int sum = 0;
  pool.parallel_for(1, 1, [&](int64_t, int64_t) { ++sum; });
  CHECK(sum == 1);
}
