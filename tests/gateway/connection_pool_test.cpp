// The connection thread pool grows for concurrent jobs (one held per stream) and shrinks back.
#include "gateway/connection_pool.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace actorserve::gateway;
using namespace std::chrono_literals;

TEST_CASE("connection_pool runs blocking jobs concurrently beyond min_threads", "[gateway][pool]") {
  connection_pool pool(2, 64, 200ms);
  std::mutex m;
  std::condition_variable cv;
  int started = 0;
  bool release = false;
  for (int i = 0; i < 40; ++i)
    pool.enqueue([&] {
      std::unique_lock lock(m);
      ++started;
      cv.notify_all();
      cv.wait(lock, [&] { return release; }); // like a stream holding its thread
    });
  {
    std::unique_lock lock(m);
    // All 40 must run at once: with a fixed pool of 2 this would time out.
    REQUIRE(cv.wait_for(lock, 5s, [&] { return started == 40; }));
    release = true;
  }
  cv.notify_all();
  CHECK(pool.num_threads() >= 40);
  // Idle threads above the minimum leave after the idle timeout.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pool.num_threads() > 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(pool.num_threads() == 2);
  pool.enqueue([] {}); // still works after shrinking
  pool.shutdown();
}

TEST_CASE("connection_pool queues beyond max_threads and runs everything before shutdown", "[gateway][pool]") {
  std::atomic<int> done{0};
  {
    connection_pool pool(0, 3, 1s);
    for (int i = 0; i < 50; ++i)
      pool.enqueue([&] {
        std::this_thread::sleep_for(1ms);
        ++done;
      });
    CHECK(pool.num_threads() <= 3);
    pool.shutdown();
  }
  CHECK(done == 50);
}
