#include "tune/trials_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "seqrec/error.hpp"

namespace seqrec::tune {

using json = nlohmann::json;

bool TrialRecord::has_value() const {
  return std::isfinite(value);
}

json TrialRecord::to_json() const {
  json c = json::array();
  for (const auto& [e, v] : curve)
    c.push_back({{"epoch", e}, {"value", std::isfinite(v) ? json(v) : json(nullptr)}});
  json j = {{"number", number},
            {"params", params},
            {"curve", c},
            {"value", has_value() ? json(value) : json(nullptr)},
            {"best_epoch", best_epoch},
            {"epochs", epochs},
            {"state", state},
            {"pruned", pruned()},
            {"seconds", seconds}};
  if (!error.empty()) j["error"] = error;
  return j;
}

TrialRecord TrialRecord::from_json(const json& j, const SearchSpace& space,
                                   const std::string& origin) {
  TrialRecord t;
  try {
    t.number = j.at("number").get<int>();
    t.params = j.at("params");
    for (const auto& d : space.dims) {
      if (!t.params.contains(d.name))
        throw InputError(origin + ": the trial lacks parameter " + d.name +
                         " of the space (the space changed since the log was written?)");
      t.x.push_back(coordinate_of(d, t.params[d.name], origin));
    }
    for (const auto& p : j.at("curve"))
      t.curve.emplace_back(p.at("epoch").get<int>(),
                           p.at("value").is_number() ? p["value"].get<double>() : std::nan(""));
    t.value = j.at("value").is_number() ? j["value"].get<double>() : std::nan("");
    t.best_epoch = j.value("best_epoch", 0);
    t.epochs = j.value("epochs", 0);
    t.state = j.value("state", std::string("complete"));
    t.seconds = j.value("seconds", 0.0);
    t.error = j.value("error", std::string());
  } catch (const json::exception& e) {
    throw InputError(origin + ": not a trial record: " + e.what());
  }
  return t;
}

std::vector<TrialRecord> read_trials(const std::string& path, const SearchSpace& space) {
  std::vector<TrialRecord> out;
  std::ifstream f(path);
  if (!f) return out;
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string origin = path + ":" + std::to_string(i + 1);
    json j;
    try {
      j = json::parse(lines[i]);
    } catch (const json::exception&) {
      if (i + 1 == lines.size()) break;  // cut short by a kill: that trial runs again
      throw InputError(origin + ": not a JSON line; the trials log is damaged");
    }
    TrialRecord t = TrialRecord::from_json(j, space, origin);
    if (t.number != static_cast<int>(out.size()))
      throw InputError(origin + ": trial number " + std::to_string(t.number) + " where " +
                       std::to_string(out.size()) + " was expected; the trials log is damaged");
    out.push_back(std::move(t));
  }
  return out;
}

void append_trial(const std::string& path, const TrialRecord& t) {
  const std::string line = t.to_json().dump() + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw IoError("cannot write the trials log '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw IoError("cannot write the trials log '" + path + "': " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

int best_trial(const std::vector<TrialRecord>& trials) {
  int best = -1;
  auto better = [&](const TrialRecord& a, const TrialRecord& b) {
    const bool ca = a.state == "complete", cb = b.state == "complete";
    if (ca != cb) return ca;
    return a.value > b.value;
  };
  for (size_t i = 0; i < trials.size(); ++i) {
    if (!trials[i].has_value()) continue;
    if (best < 0 || better(trials[i], trials[static_cast<size_t>(best)]))
      best = static_cast<int>(i);
  }
  return best;
}

}  // namespace seqrec::tune
