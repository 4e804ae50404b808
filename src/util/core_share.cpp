#include "util/core_share.hpp"

#include <sched.h>

#include <algorithm>
#include <bit>
#include <thread>

namespace shardinit::detail {

int CpuSet::count() const noexcept {
  int n = 0;
  for (const std::uint64_t w : words) n += std::popcount(w);
  return n;
}

CpuSet this_process_cpus() {
  static_assert(CpuSet::kMaxCpus == CPU_SETSIZE, "one CpuSet bit per cpu_set_t CPU");
  CpuSet set;
  cpu_set_t affinity;
  CPU_ZERO(&affinity);
  if (sched_getaffinity(0, sizeof affinity, &affinity) == 0 && CPU_COUNT(&affinity) > 0) {
    for (int cpu = 0; cpu < CpuSet::kMaxCpus; ++cpu) {
      if (CPU_ISSET(cpu, &affinity)) set.add(cpu);
    }
    return set;
  }
  const int cpus = std::max(1, std::min(CpuSet::kMaxCpus, static_cast<int>(std::thread::hardware_concurrency())));
  for (int cpu = 0; cpu < cpus; ++cpu) set.add(cpu);
  return set;
}

double fair_core_share(const CpuSet& mine, std::span<const CpuSet> node) {
  double share = 0;
  for (int cpu = 0; cpu < CpuSet::kMaxCpus; ++cpu) {
    if (!mine.has(cpu)) continue;
    int sharing = 0;
    for (const CpuSet& other : node) sharing += other.has(cpu) ? 1 : 0;
    share += 1.0 / std::max(1, sharing);  // >= 1 by the precondition; a broken one counts mine alone
  }
  return share;
}

}  // namespace shardinit::detail
