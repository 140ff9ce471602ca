// The prepared split folder, read side: the counterpart of write_split (prepare.cpp), which
// writes items.tsv, the four part files and split.json.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace fs = std::filesystem;

Vocab read_item_list(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw IoError("cannot open item list '" + path + "'");
  Vocab v;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line == "ItemId") continue;
    if (line.empty()) throw InputError(path, lineno, "empty item id");
    const int32_t before = v.size();
    v.add(line);
    if (v.size() == before) throw InputError(path, lineno, "item id '" + line + "' repeated");
  }
  if (v.size() == 0) throw InputError(path, 0, "no items listed");
  return v;
}

namespace {

bool is_split_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

}  // namespace

std::vector<std::string> data_input_files(const std::string& path) {
  if (!is_split_dir(path)) return {path};
  std::vector<std::string> files;
  for (const std::string& n : split_file_names()) files.push_back((fs::path(path) / n).string());
  return files;
}

namespace {

nlohmann::json read_split_json(const std::string& dir) {
  const std::string p = (fs::path(dir) / "split.json").string();
  std::ifstream f(p);
  if (!f)
    throw InputError(dir +
                     ": not a prepared split (no split.json); run `seqrec prepare` or "
                     "pass a log file");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(p, 0, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

TrainData load_train_data(const std::string& path, SplitPart part, const ReadOptions& opt) {
  TrainData d;
  if (is_split_dir(path)) {
    d.split = read_split_json(path);
    d.protocol = d.split.value("protocol", "");
    d.items = read_item_list((fs::path(path) / "items.tsv").string());
    d.source =
        (fs::path(path) / (part == SplitPart::Test ? "train_full.tsv" : "train_tr.tsv")).string();
    ReadOptions ro;
    ro.format = Format::Delimited;
    ro.cache_dir = opt.cache_dir;
    EventLog log = read_events(d.source, ro);
    int64_t dropped = 0;
    d.train = remap(log, d.items, &dropped);
    if (dropped > 0)
      throw InputError(d.source, 0,
                       std::to_string(dropped) + " events have items missing from items.tsv");
  } else {
    EventLog log = read_events(path, opt);
    d.source = path;
    d.items = std::move(log.items);
    d.train = std::move(log.seqs);
  }
  if (d.train.n_events() == 0) throw InputError(d.source, 0, "no training events");
  return d;
}

TestData load_test_data(const std::string& path, SplitPart part, const Vocab& items,
                        const ReadOptions& opt) {
  TestData d;
  ReadOptions ro = opt;
  if (is_split_dir(path)) {
    const nlohmann::json sj = read_split_json(path);
    d.protocol = sj.value("protocol", "");
    // The cold items of a cold-start split (prepare --cold-items), on the model's indices.
    if (sj.contains("files") && sj["files"].contains("cold_items")) {
      const nlohmann::json& f = sj["files"]["cold_items"];
      if (!f.is_string())
        throw InputError((fs::path(path) / "split.json").string(), 0,
                         "files.cold_items: expected a file name");
      const Vocab cold = read_item_list((fs::path(path) / f.get<std::string>()).string());
      for (const auto& t : cold.tokens())
        if (const int32_t i = items.find(t); i >= 0) d.cold_items.push_back(i);
      std::sort(d.cold_items.begin(), d.cold_items.end());
    }
    d.source = (fs::path(path) / (part == SplitPart::Test ? "test.tsv" : "valid.tsv")).string();
    ro = ReadOptions{};
    ro.format = Format::Delimited;
    ro.cache_dir = opt.cache_dir;
  } else {
    d.source = path;
  }
  EventLog log = read_events(d.source, ro);
  d.test = remap(log, items, &d.dropped_events);
  return d;
}

}  // namespace seqrec
