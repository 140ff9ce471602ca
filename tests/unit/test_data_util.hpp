// Helpers for the data-layer tests: a per-test temporary folder and file writing.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec::test {

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
