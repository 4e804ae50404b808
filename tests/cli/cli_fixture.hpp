#pragma once
// The fixture of the CLI tests: runs the shardinit binary as a separate process in a fresh directory
// and captures its exit status and output.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "support/files.hpp"

#ifndef SHARDINIT_CLI_PATH
#error "SHARDINIT_CLI_PATH must name the shardinit binary"
#endif

namespace shardinit::test {

namespace fs = std::filesystem;

inline const std::string kCli = SHARDINIT_CLI_PATH;

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

struct Result {
  int status = -1;  // exit status; 128 + n when killed by signal n
  std::string out;
  std::string err;
};

// Each test gets a fresh directory: `work` holds manifests and outputs, captured streams go beside it.
class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    std::random_device random;
    root_ = fs::temp_directory_path() / ("shardinit_cli_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" + std::to_string(random()));
    work_ = root_ / "work";
    fs::create_directories(work_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(work_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }

  // Runs a shell command line with stdout and stderr captured.
  Result shell(const std::string& command) {
    const fs::path out = root_ / "stdout", err = root_ / "stderr";
    const std::string line = "( " + command + " ) >" + quote(out.string()) + " 2>" + quote(err.string()) + " </dev/null";
    const int raw = std::system(line.c_str());
    Result r;
    if (raw != -1 && WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
    else if (raw != -1 && WIFSIGNALED(raw)) r.status = 128 + WTERMSIG(raw);
    r.out = read_all(out);
    r.err = read_all(err);
    return r;
  }
  // Runs shardinit with these (already quoted) arguments.
  Result run(const std::string& arguments) { return shell(quote(kCli) + " " + arguments); }
  // The same under a time limit of 30 s: a run that blocks (on a FIFO, say) shows as status 124.
  Result run_bounded(const std::string& arguments) { return shell("timeout 30 " + quote(kCli) + " " + arguments); }

  fs::path manifest(const std::string& text, const std::string& name = "manifest.json") {
    const fs::path path = work_ / name;
    write_all(path, text);
    return path;
  }

  std::vector<std::string> entries(const fs::path& dir) const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path root_, work_;
};

inline std::string q(const std::filesystem::path& p) { return quote(p.string()); }

}  // namespace shardinit::test
