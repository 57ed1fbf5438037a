// Encode throughput (one thread), run by scripts/bench_tokenizer.sh: hidden from the normal test
// run ([.bench]). Reads english.txt and cjk.txt from $ACTORSERVE_BENCH_TEXTS (written by
// scripts/bench_tokenizer_texts.py) and prints MB/s per tokenizer, for the whole text as one
// string (best of 3, word cache warm, as Hugging Face's number is taken) and line by line.
#include "tests/tokenizer/tokenizer_fixtures.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace actorserve;
using namespace actorserve::testing;

TEST_CASE("tokenizer: encode throughput", "[.bench]") {
  const char* dir = std::getenv("ACTORSERVE_BENCH_TEXTS");
  REQUIRE(dir);
  for (std::string text_name : {"english.txt", "cjk.txt"}) {
    std::ifstream in(std::filesystem::path(dir) / text_name, std::ios::binary);
    REQUIRE(in);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const double mb = static_cast<double>(text.size()) / 1e6;
    for (std::string name : {"llama3", "qwen3", "deepseek_v3", "llama2", "mistral_nemo"}) {
      tokenizer tok = tokenizer::from_dir(real_tokenizer_dir(name));
      size_t warm = std::min<size_t>(20000, text.size());
      while (warm < text.size() && (static_cast<unsigned char>(text[warm]) & 0xc0) == 0x80)
        --warm; // cut at a character boundary
      tok.encode(text.substr(0, warm));
      // Wall time and process CPU time: on a shared machine the CPU time is the steadier figure.
      double best = 1e30, best_cpu = 1e30;
      size_t tokens = 0;
      for (int rep = 0; rep < 3; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        std::clock_t c0 = std::clock();
        tokens = tok.encode(text).size();
        best_cpu = std::min(best_cpu, static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      auto t0 = std::chrono::steady_clock::now();
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line))
        tok.encode(line);
      double per_line = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("actorserve %-13s %-12s whole %7.2f MB/s (cpu %7.2f)  per-line %7.2f MB/s  (%zu tokens, %.2f MB)\n",
                  name.c_str(), text_name.c_str(), mb / best, mb / best_cpu, mb / per_line, tokens, mb);
      std::fflush(stdout);
    }
  }
}
