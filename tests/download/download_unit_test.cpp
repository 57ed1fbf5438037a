// Pure parts of `actorserve download`: file selection, URLs, digests, the lock.

#include "gateway/download.hpp"
#include "gateway/download_hash.hpp"
#include "gateway/download_http.hpp"
#include "tests/testing.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

using namespace actorserve::download;

TEST_CASE("only the files serving needs are fetched") {
  for (auto name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "tokenizer.model", "special_tokens_map.json", "chat_template.jinja", "model.safetensors",
                    "model-00001-of-00004.safetensors", "model.safetensors.index.json"})
    CHECK(is_serving_file(name));
  for (auto name : {"README.md", ".gitattributes", "pytorch_model.bin", "original/consolidated.00.pth",
                    "original/tokenizer.model", "onnx/model.safetensors", "LICENSE", "../config.json",
                    ".actorserve", "", "flax_model.msgpack"})
    CHECK_FALSE(is_serving_file(name));
}

TEST_CASE("URLs: parsing, redirect targets, encoding") {
  auto u = parse_url("https://huggingface.co");
  CHECK(u.host == "huggingface.co");
  CHECK(u.port == 443);
  CHECK(u.target == "/");
  auto v = parse_url("http://127.0.0.1:8080/api/x?y=1");
  CHECK(v.port == 8080);
  CHECK(v.target == "/api/x?y=1");
  CHECK(parse_url("http://[::1]:9/").host == "::1");
  CHECK_THROWS(parse_url("ftp://x/"));
  CHECK_THROWS(parse_url("huggingface.co"));
  CHECK_THROWS(parse_url("http://user:pw@host/"));
  CHECK_THROWS(parse_url("http://host:99999/"));

  // A 302 to a CDN on another host and port, a path-only redirect, a relative one.
  auto cdn = resolve_location(v, "https://cdn-lfs.hf.co:8443/blobs/abc?sig=1");
  CHECK(cdn.origin() == "https://cdn-lfs.hf.co:8443");
  CHECK(cdn.target == "/blobs/abc?sig=1");
  CHECK(resolve_location(v, "/other/path").str() == "http://127.0.0.1:8080/other/path");
  CHECK(resolve_location(v, "sibling").str() == "http://127.0.0.1:8080/api/sibling");
  CHECK(resolve_location(v, "//mirror.example/x").str() == "http://mirror.example:80/x");

  CHECK(percent_encode("refs/pr/1", false) == "refs%2Fpr%2F1");
  CHECK(percent_encode("a b/c.json", true) == "a%20b/c.json");
}

TEST_CASE("digests match known vectors") {
  // sha256("abc") from FIPS 180-2; `printf 'hello\n' | git hash-object --stdin`.
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(git_blob_sha1("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a");
  actorserve::testing::temp_dir dir;
  auto path = dir.path() / "f";
  std::ofstream(path) << "hello\n";
  CHECK(file_git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a");
  CHECK(file_sha256(path) == sha256_hex("hello\n"));
}

TEST_CASE("the folder lock excludes a second holder until released") {
  actorserve::testing::temp_dir dir;
  std::filesystem::create_directories(dir.path() / ".actorserve");
  auto first = std::make_unique<folder_lock>(dir.path(), [] {});
  std::atomic<bool> waited{false}, acquired{false};
  std::thread second([&] {
    folder_lock lock(dir.path(), [&] { waited = true; });
    acquired = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(waited);
  CHECK_FALSE(acquired);
  first.reset();
  second.join();
  CHECK(acquired);
}
