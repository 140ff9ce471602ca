// Small text formatting helpers shared by file metadata, reports and the CLI.
#pragma once

#include <cstdint>
#include <string>

namespace seqrec {

/// Now in UTC, formatted by strftime(3) with `format` (e.g. "%Y-%m-%dT%H:%M:%SZ").
std::string utc_now_text(const char* format);

/// An integer with thousands separators: 1234567 -> "1,234,567", -1200 -> "-1,200".
std::string grouped_count(int64_t n);

}  // namespace seqrec
