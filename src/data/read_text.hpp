// read_events on bytes already in memory, for the fuzz harness (fuzz/fuzz_event_log.cpp):
// a buffer of exactly the input's size lets AddressSanitizer see any read past its end,
// which a memory-mapped file (read_events) hides inside its last page.
#pragma once

#include <string>
#include <string_view>

#include "seqrec/data.hpp"

namespace seqrec::data_detail {

/// What read_events(path, opt, info) does after reading the file (format detection,
/// parsing, grouping, the time-unit check; never the binary cache), on `data`. `path` only
/// names the input in messages and picks the format by its extension, as for a file.
EventLog read_events_text(std::string_view data, const std::string& path, const ReadOptions& opt,
                          ReadInfo* info);

}  // namespace seqrec::data_detail
