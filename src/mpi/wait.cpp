#include "mpi/wait.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "io/atomic_file.hpp"
#include "util/printable.hpp"

namespace shardinit::mpi::detail {

namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Reserved point-to-point tags of the roll call (any value below MPI_TAG_UB's guaranteed 32767).
constexpr int kRollCallTag = 32101;
constexpr int kAnswerTag = 32102;
// The status a job ended by the watchdog exits with: the CLI's I/O error (docs/cli.md).
constexpr int kWatchdogExitStatus = 3;

double g_limit_seconds = kDefaultWatchdogSeconds;
std::map<int, std::string> g_hosts;  // by MPI_COMM_WORLD rank

// What a rank answers to a roll call: which roll call, whether it is waiting or working, and on what.
struct Answer {
  std::int64_t roll_call = 0;
  std::int32_t waiting = 0;
  std::array<char, 116> step{};
};

int rank_in(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}
int size_of(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}

int world_rank(MPI_Comm comm, int rank) {
  MPI_Group group, world;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  int translated = MPI_UNDEFINED;
  MPI_Group_translate_ranks(group, 1, &rank, world, &translated);
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return translated;
}

// The time a roll call waits for answers: a working rank answers after its current piece.
Seconds grace() { return Seconds(std::clamp(g_limit_seconds / 4, 2.0, 60.0)); }

// When this rank first calls the roll: rank 0 at the limit; the others one grace period later (and
// staggered), so that normally one rank calls and the rest answer.
Seconds delay(int rank) {
  if (rank == 0) return Seconds(g_limit_seconds);
  return Seconds(g_limit_seconds) + grace() * 2 + Seconds(0.05 * std::min(rank, 64));
}

// Sleeps between tests: a few hundred quick tests first (the common case: the peers are about to
// arrive), then sleeps from 20 us doubling to 1 ms, which keeps a waiting rank near 0 % CPU.
class Backoff {
 public:
  void pause() {
    if (spins_ < 256) {
      ++spins_;
      return;
    }
    const timespec t{0, static_cast<long>(sleep_us_) * 1000};
    nanosleep(&t, nullptr);
    sleep_us_ = std::min(sleep_us_ * 2, 1000);
  }

 private:
  int spins_ = 0;
  int sleep_us_ = 20;
};

// Answers every pending roll call with `step`; true if there was one.
bool answer_roll_calls(MPI_Comm comm, std::string_view step, bool waiting) {
  bool answered = false;
  for (;;) {
    int pending = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kRollCallTag, comm, &pending, &status);
    if (pending == 0) return answered;
    std::int64_t roll_call = 0;
    MPI_Recv(&roll_call, 1, MPI_INT64_T, status.MPI_SOURCE, kRollCallTag, comm, MPI_STATUS_IGNORE);
    // Never freed: the send completes at its own pace and the request is released at once. A few
    // bytes per roll call, and roll calls happen only when a rank has been silent for the limit.
    auto* answer = new Answer{roll_call, waiting ? 1 : 0, {}};
    std::memcpy(answer->step.data(), step.data(), std::min(step.size(), answer->step.size() - 1));
    MPI_Request request;
    MPI_Isend(answer, sizeof(Answer), MPI_BYTE, status.MPI_SOURCE, kAnswerTag, comm, &request);
    MPI_Request_free(&request);
    answered = true;
  }
}

struct RollCall {
  std::vector<int> silent;   // ranks that did not answer within the grace period
  bool all_waiting = true;   // every rank that answered is waiting (none is working)
  std::vector<std::string> steps;  // by rank: what it answered
};

// Asks every other rank whether it is alive and collects the answers for the grace period.
RollCall call_the_roll(MPI_Comm comm, std::string_view my_step) {
  static std::int64_t serial = 0;
  const std::int64_t id = ++serial;
  const int me = rank_in(comm), size = size_of(comm);
  auto* query = new std::int64_t(id);  // never freed, as the answers (the sends are released at once)
  std::vector<Answer> answers(static_cast<std::size_t>(size));
  std::vector<MPI_Request> receives(static_cast<std::size_t>(size), MPI_REQUEST_NULL);
  std::vector<bool> heard(static_cast<std::size_t>(size), false);
  heard[static_cast<std::size_t>(me)] = true;
  for (int r = 0; r < size; ++r) {
    if (r == me) continue;
    MPI_Request send;
    MPI_Isend(query, 1, MPI_INT64_T, r, kRollCallTag, comm, &send);
    MPI_Request_free(&send);
    MPI_Irecv(&answers[r], sizeof(Answer), MPI_BYTE, r, kAnswerTag, comm, &receives[r]);
  }
  const auto deadline = Clock::now() + grace();
  Backoff backoff;
  for (;;) {
    bool all = true;
    for (int r = 0; r < size; ++r) {
      if (heard[r]) continue;
      int done = 0;
      MPI_Test(&receives[r], &done, MPI_STATUS_IGNORE);
      if (done && answers[r].roll_call != id) {  // a late answer to an earlier roll call
        MPI_Irecv(&answers[r], sizeof(Answer), MPI_BYTE, r, kAnswerTag, comm, &receives[r]);
        done = 0;
      }
      heard[r] = done != 0;
      all = all && heard[r];
    }
    if (all || Clock::now() >= deadline) break;
    answer_roll_calls(comm, my_step, true);  // another rank may be calling the roll at the same time
    backoff.pause();
  }
  RollCall result;
  result.steps.resize(static_cast<std::size_t>(size));
  result.steps[me] = std::string(my_step);
  for (int r = 0; r < size; ++r) {
    if (r == me) continue;
    if (!heard[r]) {
      MPI_Cancel(&receives[r]);
      MPI_Wait(&receives[r], MPI_STATUS_IGNORE);
      result.silent.push_back(r);
      continue;
    }
    result.all_waiting = result.all_waiting && answers[r].waiting != 0;
    result.steps[r] = std::string(answers[r].step.data());
  }
  return result;
}

std::string limit_text() {
  char text[32];
  std::snprintf(text, sizeof text, "%g", g_limit_seconds);
  return text;
}

[[noreturn]] void end_job(MPI_Comm comm, std::string_view step, double waited, const RollCall& roll) {
  std::string message;
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.0f", waited);
  if (!roll.silent.empty()) {
    message = "no progress for " + std::string(seconds) + " s while " + std::string(step) + ": " +
              ranks_and_hosts(comm, roll.silent) + (roll.silent.size() == 1 ? " does" : " do") +
              " not respond (stopped, stuck in a system call such as a hung filesystem, or on a host that is down); "
              "ending the job (watchdog limit " + limit_text() + " s: --watchdog SECONDS)";
  } else {
    // Everyone answers and everyone waits, on different steps: the ranks are not running the same
    // sequence of collective steps (a bug, or ranks that were given different work).
    std::string steps;
    for (std::size_t r = 0; r < roll.steps.size() && r < 8; ++r) {
      steps += (r ? "; " : "") + std::string("rank ") + std::to_string(r) + ": " + roll.steps[r];
    }
    message = "internal error: every rank is waiting, on different steps, for " + std::string(seconds) + " s (" +
              steps + "); ending the job";
  }
  shardinit::detail::remove_all_temporaries();
  std::fprintf(stderr, "shardinit: error: %s\n", shardinit::detail::printable(message, 4000).c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, kWatchdogExitStatus);
  std::_Exit(kWatchdogExitStatus);
}

}  // namespace

void set_watchdog_seconds(double seconds) { g_limit_seconds = seconds; }
double watchdog_seconds() noexcept { return g_limit_seconds; }

void learn_hosts(MPI_Comm comm) {
  constexpr int kName = 64;
  std::array<char, kName> mine{};
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  std::memcpy(mine.data(), name, static_cast<std::size_t>(std::min(length, kName - 1)));
  const int size = size_of(comm);
  std::vector<char> all(static_cast<std::size_t>(size) * kName);
  MPI_Request request;
  MPI_Iallgather(mine.data(), kName, MPI_CHAR, all.data(), kName, MPI_CHAR, comm, &request);
  wait(comm, request, "learning the hosts of the ranks");
  for (int r = 0; r < size; ++r) {
    const char* host = all.data() + static_cast<std::size_t>(r) * kName;
    g_hosts[world_rank(comm, r)] = std::string(host, strnlen(host, kName));
  }
}

std::string host_of(MPI_Comm comm, int rank) {
  const auto it = g_hosts.find(world_rank(comm, rank));
  return it == g_hosts.end() ? std::string() : it->second;
}

std::string rank_and_host(MPI_Comm comm, int rank) {
  const std::string host = host_of(comm, rank);
  return "rank " + std::to_string(rank) + (host.empty() ? "" : " (host " + shardinit::detail::printable(host) + ")");
}

std::string failing_rank_suffix(MPI_Comm comm, int rank) {
  const std::string host = host_of(comm, rank);
  return " (rank " + std::to_string(rank) + (host.empty() ? "" : " on host " + shardinit::detail::printable(host)) + ")";
}

std::string ranks_and_hosts(MPI_Comm comm, const std::vector<int>& unsorted) {
  std::vector<int> ranks = unsorted;
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string list;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!list.empty()) list += ", ";
    list += std::to_string(ranks[i]);
    if (j > i) {
      list += '-';
      list += std::to_string(ranks[j]);
    }
    i = j + 1;
  }
  std::vector<std::string> hosts;
  for (const int r : ranks) {
    const std::string h = host_of(comm, r);
    if (!h.empty() && std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
  }
  std::string host_list;
  for (std::size_t i = 0; i < hosts.size() && i < 4; ++i) host_list += (i ? ", " : "") + shardinit::detail::printable(hosts[i]);
  if (hosts.size() > 4) host_list += " and " + std::to_string(hosts.size() - 4) + " more";
  return (ranks.size() == 1 ? "rank " : "ranks ") + list +
         (hosts.empty() ? "" : (hosts.size() == 1 ? " (host " : " (hosts ") + host_list + ")");
}

void wait(MPI_Comm comm, MPI_Request& request, std::string_view step) {
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  if (done) return;
  const int me = rank_in(comm);
  const auto start = Clock::now();
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(delay(me));
  bool everyone_waited = false;  // at the previous roll call
  Backoff backoff;
  for (;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (answer_roll_calls(comm, step, true)) {
      // Another rank is calling the roll: it will end the job if someone is stuck; stand down.
      deadline = std::max(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(delay(me)));
    }
    if (g_limit_seconds > 0 && Clock::now() >= deadline) {
      const RollCall roll = call_the_roll(comm, step);
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return;
      const double waited = Seconds(Clock::now() - start).count();
      if (!roll.silent.empty() || (roll.all_waiting && everyone_waited)) end_job(comm, step, waited, roll);
      // Everyone is alive: the job is slow, not stuck. Look again after another limit.
      everyone_waited = roll.all_waiting;
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(Seconds(g_limit_seconds));
    }
    backoff.pause();
  }
}

void rendezvous(MPI_Comm comm, std::string_view step) {
  MPI_Request request;
  MPI_Ibarrier(comm, &request);
  wait(comm, request, step);
}

void keep_alive(MPI_Comm comm) { answer_roll_calls(comm, "working", false); }

}  // namespace shardinit::mpi::detail
