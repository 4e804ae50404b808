// The cores a process may fill with (util/core_share.hpp) and the default fill threads made of them
// (cli/fill_threads.hpp): shares computed by hand for lone, bound, unbound and overlapping sets; the
// shares of a node always add up to its CPUs; under a core of its own a process fills in turn.

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

#include "cli/fill_threads.hpp"
#include "util/core_share.hpp"

namespace shardinit::detail {
namespace {

CpuSet cpus(std::initializer_list<int> list) {
  CpuSet set;
  for (const int cpu : list) set.add(cpu);
  return set;
}

TEST(CpuSet, HoldsEveryCpuNumberOnItsOwnBit) {
  const CpuSet set = cpus({0, 63, 64, 1023});
  EXPECT_EQ(set.count(), 4);
  for (const int cpu : {0, 63, 64, 1023}) EXPECT_TRUE(set.has(cpu)) << cpu;
  for (const int cpu : {1, 62, 65, 127, 1022}) EXPECT_FALSE(set.has(cpu)) << cpu;
  EXPECT_EQ(CpuSet{}.count(), 0);
}

TEST(CpuSet, ThisProcessHasAtLeastOneCpu) {
  EXPECT_GE(this_process_cpus().count(), 1);
}

TEST(FairCoreShare, IsComputedByHand) {
  const CpuSet two = cpus({0, 1});
  EXPECT_DOUBLE_EQ(fair_core_share(two, std::vector{two}), 2.0);  // alone
  const std::vector unbound(4, two);
  EXPECT_DOUBLE_EQ(fair_core_share(two, unbound), 0.5);  // 4 ranks, 2 cores
  const std::vector bound{cpus({0}), cpus({1})};
  EXPECT_DOUBLE_EQ(fair_core_share(bound[0], bound), 1.0);  // mpirun -np 2 binds a rank to a core
  EXPECT_DOUBLE_EQ(fair_core_share(bound[1], bound), 1.0);
  // Overlapping sets: A = {0,1,2,3}, B = {2,3}, C = {3}: CPU 2 is A's and B's, CPU 3 everyone's.
  const std::vector mixed{cpus({0, 1, 2, 3}), cpus({2, 3}), cpus({3})};
  EXPECT_DOUBLE_EQ(fair_core_share(mixed[0], mixed), 1 + 1 + 1.0 / 2 + 1.0 / 3);
  EXPECT_DOUBLE_EQ(fair_core_share(mixed[1], mixed), 1.0 / 2 + 1.0 / 3);
  EXPECT_DOUBLE_EQ(fair_core_share(mixed[2], mixed), 1.0 / 3);
}

// Whatever the sets, every CPU of the node is handed out once: the shares add up to the union.
TEST(FairCoreShare, TheSharesOfANodeAddUpToItsCpus) {
  const std::vector<std::vector<CpuSet>> nodes{
      {cpus({0, 1})},
      std::vector(3, cpus({0, 1})),
      {cpus({0, 1, 2, 3}), cpus({2, 3}), cpus({3}), cpus({5, 900})},
      {cpus({0, 2, 4, 6}), cpus({1, 3, 5, 7}), cpus({0, 1, 2, 3, 4, 5, 6, 7}), cpus({7})},
  };
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    CpuSet all;
    double total = 0;
    for (const CpuSet& mine : nodes[n]) {
      for (std::size_t w = 0; w < all.words.size(); ++w) all.words[w] |= mine.words[w];
      const double share = fair_core_share(mine, nodes[n]);
      EXPECT_GT(share, 0) << n;
      EXPECT_LE(share, mine.count()) << n;
      total += share;
    }
    EXPECT_NEAR(total, all.count(), 1e-12) << n;
  }
}

TEST(FillThreads, OnePerCoreOfTheShareElseInTurnAndTheOptionWins) {
  using cli::CommonOptions;
  using cli::Launch;
  const CommonOptions automatic{};
  const auto threads_for = [&](Launch::Kind kind, double cores) { return cli::fill_threads(automatic, Launch{kind, 0, 4, cores}); };
  EXPECT_EQ(threads_for(Launch::Kind::single, 2), 2);
  EXPECT_EQ(threads_for(Launch::Kind::mpi, 1), 1);          // bound to one core: one worker beside the writer
  EXPECT_EQ(threads_for(Launch::Kind::mpi, 0.5), 0);        // oversubscribed: fill and write in turn
  EXPECT_EQ(threads_for(Launch::Kind::mpi, 3 * (1.0 / 3)), 1);  // three thirds of a core are a core
  EXPECT_EQ(threads_for(Launch::Kind::mpi, 8.9), 8);
  EXPECT_EQ(threads_for(Launch::Kind::one_rank, 1e6), cli::kMaxThreads);
  CommonOptions given{};
  given.threads = 3;
  EXPECT_EQ(cli::fill_threads(given, Launch{Launch::Kind::mpi, 0, 4, 0.25}), 3);
}

}  // namespace
}  // namespace shardinit::detail
