#pragma once
// How many cores a process may fill with: the CPUs of its affinity, each shared fairly among the
// processes of its node that may run on it. A lone process owns its CPUs; 4 unbound ranks on a
// 2-core node own half a core each; 8 ranks bound 4 to a socket of 32 cores own 8 cores each.

#include <array>
#include <cstdint>
#include <span>

namespace shardinit::detail {

// A set of CPU numbers 0 .. kMaxCpus - 1 (glibc's CPU_SETSIZE), as plain words so that ranks can
// exchange it as MPI_UINT64_T.
struct CpuSet {
  static constexpr int kMaxCpus = 1024;
  std::array<std::uint64_t, kMaxCpus / 64> words{};

  [[nodiscard]] bool has(int cpu) const noexcept { return (words[static_cast<std::size_t>(cpu) / 64] >> (cpu % 64)) & 1u; }
  void add(int cpu) noexcept { words[static_cast<std::size_t>(cpu) / 64] |= std::uint64_t{1} << (cpu % 64); }
  [[nodiscard]] int count() const noexcept;
  friend bool operator==(const CpuSet&, const CpuSet&) = default;
};

// The CPUs this process may run on (sched_getaffinity); when the system cannot say (more CPUs than
// kMaxCpus, no affinity call), CPUs 0 .. hardware_concurrency - 1.
[[nodiscard]] CpuSet this_process_cpus();

// This process's fair share of its CPUs, in cores: each CPU of `mine` counts 1/k, where k is the
// number of sets in `node` that hold it.
// @pre `node` holds every process of the node, `mine` among them (so k >= 1 for every CPU of mine).
[[nodiscard]] double fair_core_share(const CpuSet& mine, std::span<const CpuSet> node);

}  // namespace shardinit::detail
