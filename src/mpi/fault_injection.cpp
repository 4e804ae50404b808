#include "mpi/fault_injection.hpp"

#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "shardinit/error.hpp"

namespace shardinit::mpi::detail {

namespace {

constexpr std::string_view kSites[] = {"plan", "fill", "write", "read", "kill", "stop", "stall",
                                       "stop_in_fill", "slow", "squat"};

std::vector<std::pair<std::string, int>> parse(const std::string_view whole) {
  std::vector<std::pair<std::string, int>> faults;
  const auto bad = [&] {
    return Error(ErrorKind::invalid_argument, "SHARDINIT_FAULT=\"" + std::string(whole) +
                                                  "\": expected SITE@RANK[,SITE@RANK...] with SITE one of plan, fill, "
                                                  "write, read, kill, stop, stall, stop_in_fill, slow, squat");
  };
  std::string_view text = whole;
  while (!text.empty()) {
    const std::string_view item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    const auto at = item.find('@');
    if (at == std::string_view::npos) throw bad();
    const std::string_view site = item.substr(0, at), rank_text = item.substr(at + 1);
    int rank = -1;
    const auto [end, error] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    bool known = false;
    for (const auto s : kSites) known = known || s == site;
    if (!known || error != std::errc() || end != rank_text.data() + rank_text.size() || rank < 0) throw bad();
    faults.emplace_back(std::string(site), rank);
  }
  return faults;
}

}  // namespace

bool fault_injected(std::string_view site, int rank) {
  static const char* const variable = std::getenv("SHARDINIT_FAULT");
  if (variable == nullptr) return false;
  static const std::vector<std::pair<std::string, int>> faults = parse(variable);
  for (const auto& [s, r] : faults) {
    if (s == site && r == rank) return true;
  }
  return false;
}

void after_first_piece(int rank) {
  // A rank on a slow filesystem: 3 s of silence after every piece (less than the tests' limit).
  if (fault_injected("slow", rank)) ::sleep(3);
  static bool struck = false;
  if (struck) return;
  struck = true;
  if (fault_injected("kill", rank)) std::raise(SIGKILL);
  if (fault_injected("stop", rank)) std::raise(SIGSTOP);
  if (fault_injected("stall", rank)) {
    for (;;) ::pause();  // in a system call, answering nobody, until a signal ends the process
  }
}

void before_filling(int rank) {
  static bool struck = false;
  if (struck) return;
  struck = true;
  if (fault_injected("stop_in_fill", rank)) std::raise(SIGSTOP);
}

}  // namespace shardinit::mpi::detail
