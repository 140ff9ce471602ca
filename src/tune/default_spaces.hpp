// The default search spaces of `seqrec tune`, one per model type: the files
// tune/spaces/MODEL.json of the source tree, compiled in by CMakeLists.txt.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace seqrec::tune {

/// (model type, the JSON text of its space file), one entry per file.
const std::vector<std::pair<std::string, std::string>>& default_space_texts();

}  // namespace seqrec::tune
