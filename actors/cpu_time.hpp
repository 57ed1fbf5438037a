#pragma once
// CPU time of the calling thread, for the scheduler's per-iteration overhead accounting.

#include <cstdint>
#include <ctime>

namespace actorserve {

inline int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

} // namespace actorserve
