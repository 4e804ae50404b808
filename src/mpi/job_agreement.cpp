#include "mpi/job_agreement.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "mpi/agreement.hpp"
#include "mpi/wait.hpp"
#include "shardinit/util/sha256.hpp"
#include "util/printable.hpp"

namespace shardinit::mpi::detail {

namespace {

// What each rank contributes: fixed size, so that one gather works whatever a rank's state.
struct Record {
  std::int32_t failed = 0;
  std::int32_t kind = 0;
  std::int32_t claims = 0;
  std::array<std::array<char, 64>, kMaxClaims> digests{};  // hex SHA-256 of each claim's compared text
  std::array<char, 64> error{};                            // hex SHA-256 of the error's message, if failed
};

// The groups of ranks that agree on claim `c`, each sorted, the groups by their lowest rank.
std::vector<std::vector<int>> groups_of(const std::vector<Record>& records, std::size_t c) {
  std::map<std::string, std::vector<int>> by_digest;
  for (std::size_t r = 0; r < records.size(); ++r) {
    const auto& d = records[r].digests[c];
    by_digest[std::string(d.data(), d.size())].push_back(static_cast<int>(r));
  }
  std::vector<std::vector<int>> groups;
  for (auto& [digest, ranks] : by_digest) groups.push_back(std::move(ranks));
  std::sort(groups.begin(), groups.end(), [](const auto& x, const auto& y) { return x.front() < y.front(); });
  return groups;
}

}  // namespace

void agree_on_job(MPI_Comm comm, const std::optional<Error>& local_error, const std::vector<Claim>& claims) {
  learn_hosts(comm);
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);

  Record mine;
  std::optional<Error> failure = local_error;
  if (!failure && claims.size() > kMaxClaims) failure = Error(ErrorKind::invalid_argument, "internal error: too many claims");
  if (failure) {
    mine.failed = 1;
    mine.kind = static_cast<std::int32_t>(failure->kind());
    const std::string hex = Sha256::hex(failure->what());
    std::memcpy(mine.error.data(), hex.data(), std::min(hex.size(), mine.error.size()));
  } else {
    mine.claims = static_cast<std::int32_t>(claims.size());
    for (std::size_t c = 0; c < claims.size(); ++c) {
      const std::string hex = Sha256::hex(claims[c].compared);
      std::memcpy(mine.digests[c].data(), hex.data(), std::min(hex.size(), mine.digests[c].size()));
    }
  }
  std::vector<Record> records(static_cast<std::size_t>(size));
  MPI_Request request;
  MPI_Iallgather(&mine, sizeof(Record), MPI_BYTE, records.data(), sizeof(Record), MPI_BYTE, comm, &request);
  wait(comm, request, "agreeing on what the ranks run");

  // An error first: a rank that failed has no claims to compare. When every rank failed alike (a
  // usage error, the same bad manifest), it is every rank's: no rank is named.
  const bool everyone_alike = std::all_of(records.begin(), records.end(), [&](const Record& x) {
    return x.failed != 0 && x.error == records[0].error;
  });
  for (int r = 0; r < size; ++r) {
    if (records[r].failed == 0) continue;
    std::string message = r == rank ? failure->what() : std::string();
    broadcast(comm, message, r, "sharing an error");
    if (size > 1 && !everyone_alike) message += failing_rank_suffix(comm, r);
    throw_agreed(static_cast<ErrorKind>(records[r].kind), message);
  }
  // The same code makes the same claims: ranks that make different ones run different programs.
  for (const Record& r : records) {
    if (r.claims != records[0].claims) {
      throw_agreed(ErrorKind::invalid_argument, "the ranks do not agree on what they check: they run different versions of shardinit");
    }
  }
  const std::size_t count = std::min(claims.size(), static_cast<std::size_t>(records[0].claims));
  for (std::size_t c = 0; c < count; ++c) {
    const auto groups = groups_of(records, c);
    if (groups.size() == 1) continue;
    // What each group has, told by its lowest rank: a sequence of broadcasts every rank derives from
    // the same gathered records.
    constexpr std::size_t kShownGroups = 4;
    std::string message = "the ranks do not agree on " + claims[c].subject + ": ";
    for (std::size_t g = 0; g < groups.size() && g < kShownGroups; ++g) {
      const int root = groups[g].front();
      std::string shown = root == rank ? claims[c].shown : std::string();
      broadcast(comm, shown, root, "telling what the ranks disagree on");
      message += (g ? "; " : "") + shardinit::detail::printable(shown, 300) + " on " + ranks_and_hosts(comm, groups[g]);
    }
    if (groups.size() > kShownGroups) message += "; and " + std::to_string(groups.size() - kShownGroups) + " more";
    throw_agreed(ErrorKind::invalid_argument, message);
  }
}

}  // namespace shardinit::mpi::detail
