// The current UTC time as text, for file metadata and report headers.
#pragma once

#include <string>

namespace seqrec {

/// Now in UTC, formatted by strftime(3) with `format` (e.g. "%Y-%m-%dT%H:%M:%SZ").
std::string utc_now_text(const char* format);

}  // namespace seqrec
