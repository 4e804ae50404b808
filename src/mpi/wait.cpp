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

#include "format/atomic_file.hpp"
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

// When this rank first calls the roll in a wait: rank 0 after half the limit; the others a quarter of
// the limit later (and staggered), so that normally one rank calls and the rest answer.
Seconds first_roll(int rank) {
  const Seconds half(g_limit_seconds / 2);
  if (rank == 0) return half;
  return half + Seconds(g_limit_seconds / 4) + Seconds(0.05 * std::min(rank, 64));
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

// A roll call under way: the questions are sent, the answers are collected as they arrive, while
// the caller goes on waiting for its own operation. A rank is silent when it has not answered for the
// whole limit since it was asked: a waiting rank answers at once, a working one at its next
// keep_alive(), so any rank that answers at least once per limit is never taken for stuck.
class RollCall {
 public:
  RollCall(MPI_Comm comm, std::string_view my_step) : comm_(comm), sent_(Clock::now()) {
    static std::int64_t serial = 0;
    id_ = ++serial;
    me_ = rank_in(comm);
    const int size = size_of(comm);
    answers_.resize(static_cast<std::size_t>(size));
    receives_.assign(static_cast<std::size_t>(size), MPI_REQUEST_NULL);
    heard_.assign(static_cast<std::size_t>(size), false);
    heard_[static_cast<std::size_t>(me_)] = true;
    steps_.resize(static_cast<std::size_t>(size));
    steps_[static_cast<std::size_t>(me_)] = std::string(my_step);
    auto* question = new std::int64_t(id_);  // never freed, as the answers (the sends are released at once)
    for (int r = 0; r < size; ++r) {
      if (r == me_) continue;
      MPI_Request send;
      MPI_Isend(question, 1, MPI_INT64_T, r, kRollCallTag, comm, &send);
      MPI_Request_free(&send);
      MPI_Irecv(&answers_[r], sizeof(Answer), MPI_BYTE, r, kAnswerTag, comm, &receives_[r]);
    }
  }
  RollCall(const RollCall&) = delete;
  RollCall& operator=(const RollCall&) = delete;
  // Whatever is still unanswered is no longer listened for.
  ~RollCall() {
    for (MPI_Request& r : receives_) {
      if (r == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
  }

  // Collects the answers that have arrived; true once every rank has answered.
  bool everyone_answered() {
    bool all = true;
    for (std::size_t r = 0; r < receives_.size(); ++r) {
      if (heard_[r]) continue;
      int done = 0;
      MPI_Test(&receives_[r], &done, MPI_STATUS_IGNORE);
      if (done && answers_[r].roll_call != id_) {  // a late answer to an earlier roll call
        MPI_Irecv(&answers_[r], sizeof(Answer), MPI_BYTE, static_cast<int>(r), kAnswerTag, comm_, &receives_[r]);
        done = 0;
      }
      if (done) {
        heard_[r] = true;
        all_waiting_ = all_waiting_ && answers_[r].waiting != 0;
        steps_[r] = std::string(answers_[r].step.data());
      }
      all = all && heard_[r];
    }
    return all;
  }
  [[nodiscard]] std::vector<int> silent() const {
    std::vector<int> ranks;
    for (std::size_t r = 0; r < heard_.size(); ++r) {
      if (!heard_[r]) ranks.push_back(static_cast<int>(r));
    }
    return ranks;
  }
  [[nodiscard]] bool all_waiting() const noexcept { return all_waiting_; }  // among those that answered
  [[nodiscard]] const std::vector<std::string>& steps() const noexcept { return steps_; }
  [[nodiscard]] Clock::time_point sent() const noexcept { return sent_; }

 private:
  MPI_Comm comm_;
  Clock::time_point sent_;
  std::int64_t id_ = 0;
  int me_ = 0;
  std::vector<Answer> answers_;
  std::vector<MPI_Request> receives_;
  std::vector<bool> heard_;
  std::vector<std::string> steps_;
  bool all_waiting_ = true;
};

std::string limit_text() {
  char text[32];
  std::snprintf(text, sizeof text, "%g", g_limit_seconds);
  return text;
}

// Ends the job: `silent` ranks have not answered for `silence` seconds (or, if none is silent, every
// rank has been found waiting on a different step twice in a row: a deadlock).
[[noreturn]] void end_job(MPI_Comm comm, std::string_view step, double silence, const std::vector<int>& silent,
                          const std::vector<std::string>& steps) {
  std::string message;
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.0f", silence);
  if (!silent.empty()) {
    message = "no progress for " + std::string(seconds) + " s while " + std::string(step) + ": " +
              ranks_and_hosts(comm, silent) + (silent.size() == 1 ? " does" : " do") +
              " not respond (stopped, stuck in a system call such as a hung filesystem, or on a host that is down); "
              "ending the job (watchdog limit " + limit_text() + " s: --watchdog SECONDS)";
  } else {
    // Everyone answers and everyone waits, on different steps: the ranks are not running the same
    // sequence of collective steps (a bug, or ranks that were given different work).
    std::string list;
    for (std::size_t r = 0; r < steps.size() && r < 8; ++r) {
      list += (r ? "; " : "") + std::string("rank ") + std::to_string(r) + ": " + steps[r];
    }
    message = "internal error: every rank is waiting, on different steps (" + list + "); ending the job";
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
  const auto after = [](Seconds seconds) { return Clock::now() + std::chrono::duration_cast<Clock::duration>(seconds); };
  auto next_roll = after(first_roll(me));
  std::optional<RollCall> roll;
  bool everyone_waited = false;  // at the previous roll call
  Backoff backoff;
  for (;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;  // a roll call under way is dropped (its destructor stops listening)
    if (answer_roll_calls(comm, step, true) && !roll) {
      // Another rank is calling the roll and will end the job if someone is silent: stand down.
      next_roll = std::max(next_roll, after(Seconds(g_limit_seconds) + first_roll(me)));
    }
    if (g_limit_seconds > 0) {
      if (!roll && Clock::now() >= next_roll) roll.emplace(comm, step);
      if (roll && roll->everyone_answered()) {
        // Everyone is alive: the job is slow, not stuck. Unless everyone waits, twice in a row.
        if (roll->all_waiting() && everyone_waited) end_job(comm, step, 0, {}, roll->steps());
        everyone_waited = roll->all_waiting();
        roll.reset();
        next_roll = after(Seconds(g_limit_seconds / 2));
      } else if (roll && Clock::now() - roll->sent() >= Seconds(g_limit_seconds)) {
        end_job(comm, step, Seconds(Clock::now() - roll->sent()).count(), roll->silent(), roll->steps());
      }
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
