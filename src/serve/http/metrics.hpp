// Request metrics of the HTTP server in Prometheus' text format: counts by route, method
// and status, a latency histogram by route, and the recommender's own counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "seqrec/recommender.hpp"

namespace seqrec::serve::http {

/// The routes of the API (a bounded label set: paths with ids map to their template).
enum class Route {
  Events,
  Recommend,
  SessionGet,
  SessionDelete,
  Health,
  Model,
  Metrics,
  Reload,
  ItemAdd,
  ItemDelete,
  Other,
  Count_
};
constexpr int kRoutes = static_cast<int>(Route::Count_);

/// The route a request went to, from its method and path.
Route classify(std::string_view method, std::string_view path);
const char* route_method(Route r);
const char* route_path(Route r);

class HttpMetrics {
 public:
  /// Bucket upper bounds of the latency histogram, in seconds.
  static constexpr std::array<double, 15> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.002,
                                                      0.005,  0.01,    0.025,  0.05,  0.1,
                                                      0.25,   0.5,     1.0,    2.5,   10.0};
  /// Counts one request; `seconds` < 0 when its duration is unknown.
  void record(Route route, int status, double seconds);
  /// Everything, in the text exposition format (version 0.0.4).
  std::string prometheus(const RecommenderStats& stats, const ServedModelInfo& model,
                         double uptime_seconds) const;

 private:
  static constexpr int kStatuses = 600;
  std::array<std::array<std::atomic<uint64_t>, kStatuses>, kRoutes> counts_{};
  std::array<std::array<std::atomic<uint64_t>, kBuckets.size() + 1>, kRoutes> buckets_{};
  std::array<std::atomic<uint64_t>, kRoutes> sum_ns_{};
  std::array<std::atomic<uint64_t>, kRoutes> observed_{};
};

}  // namespace seqrec::serve::http
