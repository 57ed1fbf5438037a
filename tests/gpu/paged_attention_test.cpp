// Paged attention against an fp64 CPU reference: mixed batches of prefill chunks (with and
// without earlier context) and decodes, GQA groups 1..8, head dims 32..256, odd block sizes,
// split-K for decodes, all three dtypes. The output is poisoned first, so rows the kernel
// failed to write fail the test.
#include "gpu/paged_attention.hpp"
#include "tests/gpu/gpu_test_util.hpp"

#include <algorithm>
#include <numeric>

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {

struct seq_shape {
  int32_t num_computed;
  int32_t num_new;
};

struct attention_case {
  dtype type;
  int32_t head_dim, q_heads, kv_heads, block_size;
  std::vector<seq_shape> seqs;
  int32_t splits = 1;
};

void run_case(const attention_case& c, std::mt19937& rng) {
  const int32_t group = c.q_heads / c.kv_heads, d = c.head_dim;
  const int64_t kv_row = int64_t(c.kv_heads) * d;
  // Blocks: each sequence gets its own, shuffled over the pool.
  std::vector<std::vector<int32_t>> tables;
  int32_t total_blocks = 0, num_tokens = 0, width = 1;
  for (const auto& s : c.seqs) {
    const int32_t blocks = (s.num_computed + s.num_new + c.block_size - 1) / c.block_size;
    tables.emplace_back(size_t(blocks));
    total_blocks += blocks;
    num_tokens += s.num_new;
    width = std::max(width, blocks);
  }
  const int32_t num_blocks = total_blocks + 3;
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  size_t next = 0;
  std::vector<int32_t> table_flat(size_t(c.seqs.size()) * size_t(width), 0);
  for (size_t s = 0; s < tables.size(); ++s)
    for (size_t b = 0; b < tables[s].size(); ++b)
      table_flat[s * size_t(width) + b] = tables[s][b] = ids[next++];

  std::vector<float> k_cache = random_values(rng, size_t(num_blocks) * size_t(c.block_size) * size_t(kv_row));
  std::vector<float> v_cache = random_values(rng, k_cache.size());
  const int64_t q_stride = int64_t(c.q_heads) * d + 2 * kv_row; // q inside a fused qkv row
  std::vector<float> q = random_values(rng, size_t(num_tokens) * size_t(q_stride), 1.5f);
  device_buffer d_k = upload(c.type, k_cache), d_v = upload(c.type, v_cache), d_q = upload(c.type, q);
  device_buffer d_tables = upload_raw(table_flat), d_width = upload_raw(std::vector<int32_t>{width});
  const int64_t out_stride = int64_t(c.q_heads) * d;
  device_buffer d_out(size_t(num_tokens) * size_t(out_stride) * dtype_size(c.type));
  d_out.poison();

  const int32_t small_tokens = attention_tile_tokens(attention_tile::small, group, d);
  const int32_t large_tokens = attention_tile_tokens(attention_tile::large, group, d);
  REQUIRE(large_tokens > 0);
  std::vector<attention_work_item> small_items, large_items;
  int32_t row = 0;
  for (int32_t s = 0; s < int32_t(c.seqs.size()); ++s) {
    const seq_shape& sh = c.seqs[size_t(s)];
    if (small_tokens > 0 && sh.num_new <= small_tokens)
      small_items.push_back({s, row, sh.num_new, sh.num_computed});
    else
      for (int32_t off = 0; off < sh.num_new; off += large_tokens)
        large_items.push_back({s, row + off, std::min(large_tokens, sh.num_new - off), sh.num_computed + off});
    row += sh.num_new;
  }
  small_items.push_back({0, 0, 0, 0}); // a padding item must be skipped
  device_buffer d_small = upload_raw(small_items);
  device_buffer d_large = upload_raw(large_items.empty() ? std::vector<attention_work_item>{{0, 0, 0, 0}} : large_items);
  const int64_t scratch = attention_split_scratch_floats(attention_tile::small, group, d, int32_t(small_items.size()),
                                                         c.kv_heads, c.splits);
  device_buffer d_scratch(size_t(std::max<int64_t>(scratch, 1)) * sizeof(float));

  paged_attention_args a;
  a.q = d_q.get();
  a.q_stride = q_stride;
  a.key_cache = d_k.get();
  a.value_cache = d_v.get();
  a.out = d_out.get();
  a.out_stride = out_stride;
  a.block_tables = d_tables.as<int32_t>();
  a.block_table_stride = d_width.as<int32_t>();
  a.num_q_heads = c.q_heads;
  a.num_kv_heads = c.kv_heads;
  a.head_dim = d;
  a.block_size = c.block_size;
  a.scale = float(1.0 / std::sqrt(double(d)));
  a.split_scratch = d_scratch.as<float>();
  a.items = d_small.as<attention_work_item>();
  a.num_items = int32_t(small_items.size());
  a.num_splits = c.splits;
  if (small_tokens > 0)
    launch_paged_attention(a, attention_tile::small, c.type, nullptr);
  else
    REQUIRE_THROWS_AS(launch_paged_attention(a, attention_tile::small, c.type, nullptr), std::invalid_argument);
  a.items = d_large.as<attention_work_item>();
  a.num_items = int32_t(large_items.size());
  a.num_splits = 1;
  launch_paged_attention(a, attention_tile::large, c.type, nullptr);
  const std::vector<float> out = download(c.type, d_out, size_t(num_tokens) * size_t(out_stride));

  std::vector<double> ref(out.size());
  row = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    for (int32_t i = 0; i < c.seqs[s].num_new; ++i, ++row) {
      const int32_t pos = c.seqs[s].num_computed + i;
      for (int32_t h = 0; h < c.q_heads; ++h) {
        const int32_t kvh = h / group;
        std::vector<double> scores(static_cast<size_t>(pos + 1));
        double mx = -INFINITY;
        for (int32_t p = 0; p <= pos; ++p) {
          const int64_t slot = int64_t(tables[s][size_t(p / c.block_size)]) * c.block_size + p % c.block_size;
          double dot = 0;
          for (int32_t e = 0; e < d; ++e)
            dot += double(q[size_t(row * q_stride + h * d + e)]) * k_cache[size_t(slot * kv_row + kvh * d + e)];
          scores[size_t(p)] = dot / std::sqrt(double(d));
          mx = std::max(mx, scores[size_t(p)]);
        }
        double sum = 0;
        for (auto& sc : scores)
          sum += sc = std::exp(sc - mx);
        for (int32_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int32_t p = 0; p <= pos; ++p) {
            const int64_t slot = int64_t(tables[s][size_t(p / c.block_size)]) * c.block_size + p % c.block_size;
            acc += scores[size_t(p)] * v_cache[size_t(slot * kv_row + kvh * d + e)];
          }
          ref[size_t(row * out_stride + h * d + e)] = acc / sum;
        }
      }
    }
  }
  INFO(name_of(c.type) << " head_dim " << d << " heads " << c.q_heads << "/" << c.kv_heads << " block "
                       << c.block_size << " splits " << c.splits << " seqs " << c.seqs.size());
  REQUIRE(rel_l2(out, ref) < tolerance(c.type));
}

} // namespace

TEST_CASE("paged attention: mixed prefill chunks and decodes", "[gpu][attention]") {
  require_gpu();
  std::mt19937 rng(7);
  const std::vector<seq_shape> mixed = {{0, 37}, {50, 1}, {3, 70}, {200, 1}, {15, 16}, {0, 1}, {64, 65}};
  for (dtype t : {dtype::bf16, dtype::f16, dtype::f32})
    for (int32_t d : {32, 64, 128})
      for (auto [qh, kvh] : std::vector<std::pair<int32_t, int32_t>>{{4, 4}, {8, 2}, {16, 2}, {6, 3}})
        for (int32_t bs : {16, 7})
          run_case({t, d, qh, kvh, bs, mixed}, rng);
}

TEST_CASE("paged attention: head dims 16 and 256, large GQA groups", "[gpu][attention]") {
  require_gpu();
  std::mt19937 rng(8);
  const std::vector<seq_shape> mixed = {{0, 20}, {33, 1}, {5, 40}};
  for (dtype t : {dtype::bf16, dtype::f32}) {
    run_case({t, 16, 4, 2, 16, mixed}, rng);
    run_case({t, 256, 8, 2, 16, mixed}, rng);
    run_case({t, 128, 32, 1, 16, mixed}, rng); // group 32: the large tile only
  }
}

TEST_CASE("paged attention: split-K decodes over long contexts", "[gpu][attention]") {
  require_gpu();
  std::mt19937 rng(9);
  const std::vector<seq_shape> decodes = {{1500, 1}, {3, 1}, {700, 1}, {31, 1}, {32, 1}, {0, 1}};
  for (dtype t : {dtype::bf16, dtype::f16, dtype::f32})
    for (int32_t splits : {1, 2, 5, 16, 64})
      run_case({t, 128, 32, 8, 16, decodes, splits}, rng);
  // Decodes of a few tokens each (a small speculative-style chunk) in the small tile.
  run_case({dtype::bf16, 64, 8, 8, 16, {{100, 3}, {7, 2}}, 4}, rng);
  run_case({dtype::f16, 128, 16, 2, 16, {{300, 2}, {9, 1}}, 3}, rng); // group 8: 8-row decode tiles
}

TEST_CASE("paged attention: long decodes and prefill chunks over long contexts", "[gpu][attention]") {
  require_gpu();
  std::mt19937 rng(10);
  // Contexts of thousands of keys in both tiles (many 64-key tiles per prefill item, many
  // 16-key groups per decode warp), Llama-3-8B's head layout; odd block size too.
  for (dtype t : {dtype::bf16, dtype::f16})
    for (int32_t bs : {16, 7}) {
      run_case({t, 128, 32, 8, bs, {{2500, 1}, {1000, 40}, {0, 130}, {4000, 1}}}, rng);
      run_case({t, 128, 32, 8, bs, {{2500, 1}, {4000, 1}, {1, 1}}, 7}, rng);
    }
}
