#pragma once
// The first step of every job under MPI: the ranks agree on what they run before any other collective
// step. Ranks started with different command lines, a stale copy of the manifest on one node, or
// another version of shardinit would otherwise run different sequences of collective calls (a hang)
// or write a file that mixes two manifests under one header. Each rank states its claims (the
// version, the command, the manifest's run digest); one fixed-size gather compares them.

#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

#include "shardinit/error.hpp"

namespace shardinit::mpi::detail {

// One thing every rank must have the same of.
struct Claim {
  std::string subject;  // "the manifest", for the message
  std::string shown;    // what a rank has, as the message shows it: "m.json: seed 1, 3 tensors, sha256:1a2b..."
  std::string compared; // what is compared (by SHA-256): the whole of it, e.g. the run digest
};

// The most claims one agreement compares.
inline constexpr std::size_t kMaxClaims = 6;

// Collective over `comm`, and safe to reach in any state: every rank brings either its claims (the
// same subjects in the same order on every rank) or the error that kept it from making them (a bad
// command line, a manifest it cannot read). Learns every rank's host (learn_hosts). Then, on every
// rank alike: throws AgreedError with the lowest failing rank's error if any rank failed; else AgreedError
// (invalid_argument) "the ranks do not agree on SUBJECT: SHOWN on ranks ... (host ...); SHOWN on ..."
// for the first claim whose compared text differs; else returns.
void agree_on_job(MPI_Comm comm, const std::optional<Error>& local_error, const std::vector<Claim>& claims);

}  // namespace shardinit::mpi::detail
