#include "model/error.hpp"
#include "model/safetensors.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iterator>

using namespace actorserve;
using json = nlohmann::json;
using Catch::Matchers::Contains;

namespace {

/// Writes a file by hand: the 8-byte length (`header_length`, or the header's size), the
/// header text and `data_size` bytes of data.
void write_raw(const std::filesystem::path& path, const std::string& header, size_t data_size,
               std::optional<uint64_t> header_length = std::nullopt) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header_length.value_or(header.size());
  for (int i = 0; i < 8; ++i)
    out.put(char(n >> (8 * i)));
  out << header;
  for (size_t i = 0; i < data_size; ++i)
    out.put(char(i));
}

std::string open_error(const std::filesystem::path& path) {
  try {
    safetensors_file file(path);
  } catch (const model_error& e) {
    return e.what();
  }
  return "";
}

std::string model_error_of(const std::filesystem::path& dir) {
  try {
    safetensors_model model(dir);
  } catch (const model_error& e) {
    return e.what();
  }
  return "";
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Deterministic test values of varied magnitude and sign.
float value_at(const tensor_spec& spec, int64_t i) {
  return float(std::sin(double(i) * 0.37 + double(spec.name.size())) * std::pow(10.0, double(i % 7) - 3.0));
}

void fill_values(const tensor_spec& spec, float* out) {
  for (int64_t i = 0; i < spec.numel(); ++i)
    out[i] = value_at(spec, i);
}

} // namespace

TEST_CASE("safetensors: malformed files are refused with the problem named") {
  testing::temp_dir dir;
  auto path = dir.path() / "bad.safetensors";
  auto tensor = [](const std::string& type, json shape, json offsets) {
    return json{{"dtype", type}, {"shape", shape}, {"data_offsets", offsets}};
  };

  SECTION("empty file") {
    std::ofstream(path).close();
    CHECK_THAT(open_error(path), Contains(path.string()) && Contains("truncated") && Contains("0 bytes"));
  }
  SECTION("shorter than the header length") {
    std::ofstream(path) << "abcde";
    CHECK_THAT(open_error(path), Contains("truncated") && Contains("8-byte header length"));
  }
  SECTION("header length past the end of the file") {
    write_raw(path, "{}", 4, 1000);
    CHECK_THAT(open_error(path), Contains("header length 1000") && Contains("past the end of the file (14 bytes)"));
    write_raw(path, "{}", 0, UINT64_MAX); // must not overflow
    CHECK_THAT(open_error(path), Contains("past the end of the file"));
  }
  SECTION("bad JSON") {
    write_raw(path, "{\"w\": {\"dtype\": ", 8);
    CHECK_THAT(open_error(path), Contains(path.string()) && Contains("not valid JSON"));
  }
  SECTION("header not an object") {
    write_raw(path, "[1, 2, 3]", 8);
    CHECK_THAT(open_error(path), Contains("header must be a JSON object"));
  }
  SECTION("unknown dtype") {
    write_raw(path, json{{"w", tensor("F99", {2}, {0, 8})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("unknown dtype 'F99'"));
  }
  SECTION("data_offsets not two increasing integers") {
    write_raw(path, json{{"w", tensor("F32", {1}, {8, 4})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("not increasing"));
    write_raw(path, json{{"w", tensor("F32", {1}, {4})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("two non-negative integers"));
    write_raw(path, json{{"w", tensor("F32", {1}, {"0", "4"})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("two non-negative integers"));
    write_raw(path, json{{"w", tensor("F32", {1}, {-4, 0})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("two non-negative integers"));
  }
  SECTION("offsets out of range of the data section") {
    write_raw(path, json{{"w", tensor("F32", {25}, {0, 100})}}.dump(), 16);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("past the end of the data section (16 bytes)"));
  }
  SECTION("overlapping tensors") {
    write_raw(path, json{{"a", tensor("F32", {2}, {0, 8})}, {"b", tensor("F32", {2}, {4, 12})}}.dump(), 16);
    CHECK_THAT(open_error(path), Contains("tensor 'b'") && Contains("overlaps tensor 'a'"));
  }
  SECTION("shape does not match the byte length") {
    write_raw(path, json{{"w", tensor("BF16", {3}, {0, 8})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("shape [3]") && Contains("hold 8"));
    write_raw(path, json{{"w", tensor("F32", {-2}, {0, 8})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("non-negative"));
    // A product that overflows 64 bits must be caught, not wrapped around.
    write_raw(path, json{{"w", tensor("F32", {1ull << 62, 1ull << 62}, {0, 8})}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("too large"));
  }
  SECTION("entry missing fields and bad metadata") {
    write_raw(path, json{{"w", {{"shape", {2}}, {"data_offsets", {0, 8}}}}}.dump(), 8);
    CHECK_THAT(open_error(path), Contains("tensor 'w'") && Contains("dtype"));
    write_raw(path, json{{"__metadata__", {{"format", 1}}}}.dump(), 0);
    CHECK_THAT(open_error(path), Contains("__metadata__") && Contains("format"));
  }
  SECTION("not a file") {
    CHECK_THAT(open_error(dir.path() / "absent.safetensors"), Contains("absent.safetensors") && Contains("cannot be opened"));
  }
}

TEST_CASE("safetensors: a hand-written file reads back") {
  testing::temp_dir dir;
  auto path = dir.path() / "model.safetensors";
  // Two F32 values (1.5, -2), then one BF16 (1.0), then an empty tensor, with 8 spare bytes.
  json header = {{"__metadata__", {{"format", "pt"}}},
                 {"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                 {"b", {{"dtype", "BF16"}, {"shape", json::array()}, {"data_offsets", {8, 10}}}},
                 {"e", {{"dtype", "F16"}, {"shape", {0, 4}}, {"data_offsets", {10, 10}}}}};
  {
    std::ofstream out(path, std::ios::binary);
    std::string text = header.dump();
    uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << text;
    float a[2] = {1.5f, -2.0f};
    uint16_t b = f32_to_bf16(1.0f);
    out.write(reinterpret_cast<const char*>(a), 8);
    out.write(reinterpret_cast<const char*>(&b), 2);
    out << "spare!!!";
  }
  safetensors_file file(path);
  CHECK(file.tensors().size() == 3);
  CHECK(file.metadata().at("format") == "pt");
  const tensor_view* a = file.find("a");
  REQUIRE(a);
  CHECK(a->type == dtype::f32);
  CHECK(a->shape == std::vector<int64_t>{2});
  CHECK(a->numel() == 2);
  float values[2];
  convert_to_f32(a->type, a->data, values, 2);
  CHECK(values[0] == 1.5f);
  CHECK(values[1] == -2.0f);
  const tensor_view* b = file.find("b");
  REQUIRE(b);
  CHECK(b->numel() == 1); // a scalar
  convert_to_f32(b->type, b->data, values, 1);
  CHECK(values[0] == 1.0f);
  CHECK(file.find("e")->nbytes == 0);
  CHECK(file.find("c") == nullptr);
}

TEST_CASE("safetensors: write then read F32, F16 and BF16") {
  testing::temp_dir dir;
  std::vector<tensor_spec> specs = {
      {"z.f32", dtype::f32, {3, 5}}, {"a.bf16", dtype::bf16, {7}}, {"m.f16", dtype::f16, {2, 3, 4}},
      {"scalar", dtype::f32, {}},    {"empty", dtype::bf16, {0}},
  };
  auto path = dir.path() / "model.safetensors";
  write_safetensors(path, specs, fill_values, {{"format", "pt"}, {"made_by", "test"}});
  CHECK_FALSE(std::filesystem::exists(path.string() + ".partial"));

  // The data section starts 8-byte aligned, the header padded with spaces as in Python.
  std::string bytes = read_bytes(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = header_size << 8 | uint8_t(bytes[size_t(i)]);
  CHECK(header_size % 8 == 0);
  auto header_text = bytes.substr(8, header_size);
  CHECK(json::parse(header_text).is_object());

  safetensors_file file(path);
  CHECK(file.metadata().at("made_by") == "test");
  REQUIRE(file.tensors().size() == specs.size());
  uint64_t data_bytes = 0;
  for (const auto& spec : specs) {
    INFO(spec.name);
    const tensor_view* t = file.find(spec.name);
    REQUIRE(t);
    CHECK(t->type == spec.type);
    CHECK(t->shape == spec.shape);
    CHECK(t->nbytes == size_t(spec.numel()) * dtype_size(spec.type));
    data_bytes += t->nbytes;
    std::vector<float> got(size_t(spec.numel()));
    convert_to_f32(t->type, t->data, got.data(), got.size());
    for (int64_t i = 0; i < spec.numel(); ++i) {
      float v = value_at(spec, i);
      float expected = spec.type == dtype::f32    ? v
                       : spec.type == dtype::bf16 ? bf16_to_f32(f32_to_bf16(v))
                                                  : f16_to_f32(f32_to_f16(v));
      CHECK(got[size_t(i)] == expected);
    }
  }
  // Tensors are packed back to back: the file is exactly header + data.
  CHECK(bytes.size() == 8 + header_size + data_bytes);
}

TEST_CASE("safetensors: chunked parallel writing gives the same bytes") {
  testing::temp_dir dir;
  std::vector<tensor_spec> specs = {{"w1", dtype::bf16, {37, 19}}, {"w2", dtype::f32, {1001}}, {"w3", dtype::f16, {5, 64}}};
  write_safetensors(dir.path() / "whole.safetensors", specs, fill_values);
  safetensors_write_options options;
  options.num_threads = 2;
  options.chunk_elements = 13; // odd chunks crossing rows
  uint64_t last_done = 0, total = 0;
  int calls = 0;
  options.progress = [&](uint64_t done, uint64_t all) {
    CHECK(done > last_done);
    last_done = done;
    total = all;
    ++calls;
  };
  write_safetensors_chunked(
      dir.path() / "chunked.safetensors", specs,
      [](const tensor_spec& spec, int64_t first, int64_t count, float* out) {
        for (int64_t i = 0; i < count; ++i)
          out[i] = value_at(spec, first + i);
      },
      options);
  CHECK(read_bytes(dir.path() / "whole.safetensors") == read_bytes(dir.path() / "chunked.safetensors"));
  CHECK(last_done == total);
  CHECK(total == 37 * 19 * 2 + 1001 * 4 + 5 * 64 * 2);
  CHECK(calls > 10);
}

TEST_CASE("safetensors: the writer refuses what it cannot write and cleans up") {
  testing::temp_dir dir;
  auto path = dir.path() / "x.safetensors";
  CHECK_THROWS_WITH(write_safetensors(path, {{"q", dtype::i8, {4}}}, fill_values), Contains("'q'") && Contains("I8"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"q", dtype::f32, {4}}, {"q", dtype::f32, {4}}}, fill_values),
                    Contains("repeated"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"q", dtype::f32, {4}}},
                                      [](const tensor_spec&, float*) { throw model_error("fill failed"); }),
                    Contains("fill failed"));
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path.string() + ".partial"));
}

TEST_CASE("safetensors: model folders, single and sharded") {
  testing::temp_dir dir;
  SECTION("neither file") {
    CHECK_THAT(model_error_of(dir.path()),
               Contains("model.safetensors") && Contains("model.safetensors.index.json") && Contains(dir.path().string()));
  }
  SECTION("single file") {
    write_safetensors(dir.path() / "model.safetensors", {{"b", dtype::f32, {2}}, {"a", dtype::f32, {3}}}, fill_values);
    safetensors_model model(dir.path());
    CHECK(model.names() == std::vector<std::string>{"a", "b"});
    CHECK(model.get("a").shape == std::vector<int64_t>{3});
    CHECK(model.files().size() == 1);
    CHECK(model.find("c") == nullptr);
    CHECK_THROWS_WITH(model.get("lm_head.weight"),
                      Contains("missing tensor lm_head.weight") && Contains(dir.path().string()));
  }
  SECTION("sharded") {
    write_safetensors(dir.path() / "model-00001-of-00002.safetensors", {{"x", dtype::bf16, {4, 4}}, {"y", dtype::f32, {2}}},
                      fill_values);
    write_safetensors(dir.path() / "model-00002-of-00002.safetensors", {{"z", dtype::f16, {8}}}, fill_values);
    json index = {{"metadata", {{"total_size", 32 + 8 + 16}}},
                  {"weight_map",
                   {{"x", "model-00001-of-00002.safetensors"},
                    {"y", "model-00001-of-00002.safetensors"},
                    {"z", "model-00002-of-00002.safetensors"}}}};
    auto index_path = dir.path() / "model.safetensors.index.json";
    std::ofstream(index_path) << index.dump();
    {
      safetensors_model model(dir.path());
      CHECK(model.files().size() == 2);
      CHECK(model.names() == std::vector<std::string>{"x", "y", "z"});
      const tensor_view& z = model.get("z");
      CHECK(z.type == dtype::f16);
      float v;
      convert_to_f32(z.type, z.data, &v, 1);
      CHECK(v == f16_to_f32(f32_to_f16(value_at({"z", dtype::f16, {8}}, 0))));
      CHECK_THROWS_WITH(model.get("w"), Contains("missing tensor w"));
    }
    // A listed tensor absent from its shard.
    index["weight_map"]["w"] = "model-00002-of-00002.safetensors";
    std::ofstream(index_path) << index.dump();
    CHECK_THAT(model_error_of(dir.path()), Contains("'w'") && Contains("model-00002-of-00002.safetensors"));
    // A shard that does not exist.
    index["weight_map"]["w"] = "model-00003-of-00002.safetensors";
    std::ofstream(index_path) << index.dump();
    CHECK_THAT(model_error_of(dir.path()), Contains("model-00003-of-00002.safetensors") && Contains("cannot be opened"));
    // A shard outside the folder.
    index["weight_map"]["w"] = "../model.safetensors";
    std::ofstream(index_path) << index.dump();
    CHECK_THAT(model_error_of(dir.path()), Contains("'w'") && Contains("not a file of"));
    // A broken index.
    std::ofstream(index_path) << "{\"weight_map\": [";
    CHECK_THAT(model_error_of(dir.path()), Contains("index.json") && Contains("not valid JSON"));
    std::ofstream(index_path) << "{\"metadata\": {}}";
    CHECK_THAT(model_error_of(dir.path()), Contains("index.json") && Contains("weight_map"));
  }
}
