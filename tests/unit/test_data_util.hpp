// Helpers for the data-layer tests: a per-test temporary folder and file writing.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec::test {

/// A temporary folder of this process (pid, a counter and the running test's name), removed
/// with what it holds when the object goes, also when the test fails midway. The unit binary
/// runs several times at once (ctest runs it under each SEQREC_ISA), so a fixed name in /tmp
/// would let one run read or delete another's file.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("seqrec_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
             (info ? "_" + std::string(info->name()) : std::string()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// The names of the entries in the folder.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename());
    return names;
  }

 private:
  std::filesystem::path path_;
};

class DataTmp : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("seqrec_data_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
            std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    std::ofstream f(p, std::ios::binary);
    f << content;
    return p;
  }
  std::filesystem::path dir_;
};

/// The message of the InputError that `fn` throws ("" if it throws nothing).
template <class F>
std::string input_error(F&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

/// Items of sequence `i` as tokens.
inline std::vector<std::string> tokens_of(const EventLog& log, size_t i) {
  std::vector<std::string> v;
  for (int32_t it : log.seqs.seq(i)) v.push_back(log.items.token(it));
  return v;
}
inline std::vector<std::string> tokens_of(const SequenceSet& s, const Vocab& items, size_t i) {
  std::vector<std::string> v;
  for (int32_t it : s.seq(i)) v.push_back(items.token(it));
  return v;
}

}  // namespace seqrec::test
